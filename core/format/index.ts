/** The rich-text model and its XEP-0393 form, as one import for the core and adapters. */
export * from "./model.ts";
export * from "./xep0393.ts";
