/**
 * Throwaway Atheme IRC services (Debian's atheme-services 7.2) linked to a
 * test InspIRCd started with `services: true`: NickServ for registering
 * accounts and SaslServ (SASL PLAIN) for logging in at connection time.
 * Config, database, log and pid live in a temp dir.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ServicesLink } from "./inspircd.ts";

const BINARY = "/usr/bin/atheme-services";

export interface AthemeHandle {
  dir: string;
  stop(): Promise<void>;
}

function config(link: ServicesLink): string {
  const agent = (nick: string, real: string) => `{
\tnick = "${nick}";
\tuser = "${nick}";
\thost = "${link.name}";
\treal = "${real}";
`;
  // Only what the tests use; Atheme's doc/IRCD: the "inspircd" protocol module speaks InspIRCd 2.0's
  // protocol (1202), which InspIRCd 3's m_spanningtree accepts.
  return `
loadmodule "modules/protocol/inspircd";
loadmodule "modules/backend/opensex";
loadmodule "modules/crypto/pbkdf2v2";
loadmodule "modules/nickserv/main";
loadmodule "modules/nickserv/register";
loadmodule "modules/nickserv/identify";
loadmodule "modules/nickserv/set_core";
loadmodule "modules/nickserv/set_password";
loadmodule "modules/saslserv/main";
loadmodule "modules/saslserv/plain";
pbkdf2v2 { };
serverinfo {
\tname = "${link.name}";
\tdesc = "Estuary test services";
\tnumeric = "0SV";
\trecontime = 1;
\tnetname = "EstuaryTest";
\thidehostsuffix = "users.test";
\tadminname = "test";
\tadminemail = "test@localhost";
\tregisteremail = "noreply@localhost";
\tloglevel = { error; info; admin; network; };
\tmaxlogins = 5;
\tmaxusers = 5;
\tmdlimit = 30;
\temaillimit = 10;
\temailtime = 300;
\tauth = none;
\tcasemapping = rfc1459;
};
uplink "${link.uplink}" {
\thost = "127.0.0.1";
\tpassword = "${link.password}";
\tport = ${link.port};
};
nickserv ${agent("NickServ", "Nickname Services")}\tmaxnicks = 5;
\texpire = 30;
};
saslserv ${agent("SaslServ", "SASL Authentication Agent")}};
general {
\tcommit_interval = 5;
\tflood_msgs = 0;
\tflood_time = 10;
\tratelimit_uses = 0;
\tratelimit_period = 60;
\tkline_time = 7;
\tclone_time = 0;
\tuplink_sendq_limit = 1048576;
\tlanguage = "en";
};
`;
}

/** Starts Atheme and resolves once it has finished synching with its uplink (the link is up). */
export async function startAtheme(link: ServicesLink): Promise<AthemeHandle> {
  const dir = await mkdtemp(join(tmpdir(), "estuary-atheme-"));
  const file = join(dir, "atheme.conf");
  const log = join(dir, "atheme.log");
  await writeFile(file, config(link));
  const child: ChildProcess = spawn(BINARY, ["-n", "-c", file, "-D", dir, "-l", log, "-p", join(dir, "atheme.pid")], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));

  async function stop(): Promise<void> {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  }

  // "m_pong(): finished synching with uplink" is what Atheme logs once the burst is done.
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (/finished synching with uplink/.test(output)) return { dir, stop };
    if (child.exitCode !== null || Date.now() > deadline) {
      const logged = await readFile(log, "utf8").catch(() => "");
      await stop();
      throw new Error(`atheme did not link to ${link.uplink}:${link.port}:\n${output}\n${logged}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
