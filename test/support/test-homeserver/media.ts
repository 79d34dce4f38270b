/**
 * Content repository (spec: "Content repository"): upload to
 * /_matrix/media/v3/upload, authenticated download under
 * /_matrix/client/v1/media (v1.11), and the legacy unauthenticated
 * /_matrix/media/v3 download that the spec deprecates but servers still serve.
 */
import { MatrixHttpError, notFound, type Reply, type Request, type Router } from "./http.ts";
import { authed, ok, type Context } from "./context.ts";
import { randomId } from "./store.ts";

const MAX_UPLOAD = 50 * 1024 * 1024;

export function mediaRoutes(router: Router, ctx: Context): void {
  authed(router, ctx, "POST", "/_matrix/media/v3/upload", (req, s) => {
    if (req.raw.length > MAX_UPLOAD) throw new MatrixHttpError(413, "M_TOO_LARGE", "Upload too large");
    const mediaId = randomId(16);
    ctx.accounts.media.set(mediaId, {
      bytes: req.raw,
      contentType: req.headers["content-type"] ?? "application/octet-stream",
      filename: req.query.get("filename") ?? undefined,
      uploader: s.userId,
    });
    return ok({ content_uri: `mxc://${ctx.serverName}/${mediaId}` });
  });

  const config = () => ok({ "m.upload.size": MAX_UPLOAD });
  authed(router, ctx, "GET", "/_matrix/client/v1/media/config", config);
  authed(router, ctx, "GET", "/_matrix/media/v3/config", config);

  const download = (req: Request): Reply => {
    if (req.params.serverName !== ctx.serverName) throw notFound("Remote media is not available on a test homeserver");
    const media = ctx.accounts.media.get(req.params.mediaId!);
    if (!media) throw notFound("Media not found");
    const filename = req.params.fileName ?? media.filename;
    const headers: Record<string, string> = {
      "Content-Type": media.contentType,
      // Spec: servers should serve media as attachments unless the type is safe to show inline; tests only read bytes.
      "Content-Disposition": filename ? `attachment; filename*=utf-8''${encodeURIComponent(filename)}` : "attachment",
      "Content-Security-Policy": "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; object-src 'self';",
    };
    return { bytes: media.bytes, headers };
  };
  for (const path of ["download/:serverName/:mediaId", "download/:serverName/:mediaId/:fileName", "thumbnail/:serverName/:mediaId"]) {
    // Thumbnails: the original is returned; a test server does no image processing.
    authed(router, ctx, "GET", `/_matrix/client/v1/media/${path}`, (req) => download(req));
    router.add("GET", `/_matrix/media/v3/${path}`, download);
  }
}
