/**
 * A throwaway InspIRCd 3 (Debian's /usr/sbin/inspircd) for integration tests:
 * its own config, pid and log in a temp dir, bound to 127.0.0.1 on a free port,
 * with the IRCv3 modules the IRC adapter uses and the per-IP / flood limits
 * lifted so many test clients can connect at once.
 *
 * Optionally a TLS listener (m_ssl_gnutls, with the caller's certificate) and
 * a server-link port for IRC services (Atheme, see atheme.ts) with SASL
 * (m_sasl, m_services_account).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface InspircdOptions {
  linelen?: number;
  /** PEM texts of the server certificate (chain) and its key: adds a TLS listener on `tlsPort`. */
  tls?: { cert: string; key: string };
  /** Accept a services server (see ServicesLink) on a link port, U-lined, as the SASL agent. */
  services?: true;
  /**
   * `<performance netbuffersize>`: bytes InspIRCd reads from a socket per read (default 10240,
   * InspIRCd 3 accepts 1024..65534). InspIRCd 3 reads client sockets edge-triggered: a read that
   * fills the buffer schedules one "trial read" for the next main-loop pass, and that pass then
   * blocks in epoll_wait for up to 1 s when no other socket is active (src/inspircd.cpp:
   * DispatchTrialWrites() runs before DispatchEvents()). A client that has written more than
   * ~2 buffers at once is thus read one buffer per second. bench/irc raises it so that its bursts
   * are read in one go.
   */
  netBufferSize?: number;
}

/** What a services package needs to link to this server. */
export interface ServicesLink {
  /** Our server name (the services' uplink name). */
  uplink: string;
  /** The name the services must use. */
  name: string;
  port: number;
  password: string;
}

export interface InspircdHandle {
  host: "127.0.0.1";
  port: number;
  /** The TLS listener's port, when started with `tls`. */
  tlsPort?: number;
  services?: ServicesLink;
  dir: string;
  stop(): Promise<void>;
  /** Stops and starts again on the same port; `whileDown` runs in between (to act during the outage). */
  restart(options?: { whileDown?: () => Promise<void> }): Promise<void>;
}

const BINARY = "/usr/sbin/inspircd";

/** Modules beyond the core; each is /usr/lib/inspircd/modules/m_<name>.so. */
const MODULES = [
  "cap",
  "ircv3", // away-notify, account-notify, extended-join
  "ircv3_echomessage",
  "ircv3_ctctags", // message-tags
  "ircv3_msgid",
  "ircv3_servertime",
  "ircv3_batch",
  "chanhistory", // channel mode +H: the server replays recent lines on join (server-side history)
  "namesx", // multi-prefix
  "uhnames", // userhost-in-names
];

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

interface Extras {
  tlsPort?: number;
  services?: ServicesLink;
  netBufferSize?: number;
}

function tlsConfig(dir: string, tlsPort: number): string {
  // InspIRCd 3: an <sslprofile> for m_ssl_gnutls, named by the listener's sslprofile attribute;
  // m_sslinfo makes WHOIS say who uses TLS (671 RPL_WHOISSECURE).
  return `
<module name="ssl_gnutls">
<module name="sslinfo">
<sslprofile name="estuary-test" provider="gnutls" certfile="${join(dir, "tls-cert.pem")}" keyfile="${join(dir, "tls-key.pem")}" requestclientcert="no">
<bind address="127.0.0.1" port="${tlsPort}" type="clients" sslprofile="estuary-test">`;
}

function servicesConfig(link: ServicesLink): string {
  // A <link> the services connect in on (they speak the InspIRCd 2.0 protocol, which InspIRCd 3
  // still accepts), U-lined so they may change modes and accounts; m_sasl sends AUTHENTICATE to them.
  return `
<module name="spanningtree">
<module name="sasl">
<module name="services_account">
<bind address="127.0.0.1" port="${link.port}" type="servers">
<link name="${link.name}" ipaddr="127.0.0.1" port="${link.port}" allowmask="127.0.0.0/8" sendpass="${link.password}" recvpass="${link.password}">
<uline server="${link.name}" silent="yes">
<sasl target="${link.name}" requiressl="no">`;
}

function config(dir: string, port: number, extras: Extras = {}): string {
  return `
<server name="irc.test" description="Estuary test server" network="EstuaryTest">
<admin name="Test" nick="test" email="test@localhost">
<bind address="127.0.0.1" port="${port}" type="clients">${extras.tlsPort ? tlsConfig(dir, extras.tlsPort) : ""}${extras.services ? servicesConfig(extras.services) : ""}
<connect allow="*" timeout="60" pingfreq="120" threshold="100000" commandrate="10000000"
         fakelag="no" localmax="10000" globalmax="10000" limit="100000" maxchans="500"
         hardsendq="4194304" softsendq="4194304" recvq="65536"
         resolvehostnames="no" useident="no">
<class name="All" commands="*" privs="*" usermodes="*" chanmodes="*">
<type name="Admin" classes="All">
<oper name="admin" password="admin" host="*@*" type="Admin">
<channels users="500" opers="500">
<dns server="127.0.0.1" timeout="1">
<pid file="${join(dir, "inspircd.pid")}">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="${join(dir, "inspircd.log")}">
<files motd="${join(dir, "motd.txt")}">
<options prefixquit="Quit: " syntaxhints="no" announcets="yes" hostintopic="yes" exemptchanops="">
<security hideserver="" userstats="Pu" flatlinks="no" hidesplits="no" hideulines="no" hidebans="no" maxtargets="20">
<performance netbuffersize="${extras.netBufferSize ?? 10240}" somaxconn="128" softlimit="12800" clonesonconnect="no" quietbursts="yes">
${MODULES.map((m) => `<module name="${m}">`).join("\n")}
`;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: "127.0.0.1", port });
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
  });
}

export async function startInspircd(options: InspircdOptions = {}): Promise<InspircdHandle> {
  // InspIRCd 3 has a fixed 512-byte line (no LINELEN ISUPPORT, no config knob).
  if (options.linelen !== undefined && options.linelen !== 512) {
    throw new Error("InspIRCd 3 does not support a line length other than 512");
  }
  const dir = await mkdtemp(join(tmpdir(), "estuary-inspircd-"));
  const port = await freePort();
  const extras: Extras = {};
  if (options.netBufferSize !== undefined) {
    if (!Number.isInteger(options.netBufferSize) || options.netBufferSize < 1024 || options.netBufferSize > 65534) {
      throw new Error("InspIRCd 3 takes a netbuffersize between 1024 and 65534");
    }
    extras.netBufferSize = options.netBufferSize;
  }
  if (options.tls) {
    extras.tlsPort = await freePort();
    await writeFile(join(dir, "tls-cert.pem"), options.tls.cert);
    await writeFile(join(dir, "tls-key.pem"), options.tls.key, { mode: 0o600 });
  }
  if (options.services) {
    extras.services = { uplink: "irc.test", name: "services.test", port: await freePort(), password: "estuary-link" };
  }
  const file = join(dir, "inspircd.conf");
  await writeFile(file, config(dir, port, extras));
  await writeFile(join(dir, "motd.txt"), "Estuary test server\n");

  let child: ChildProcess | undefined;
  let output = "";

  async function start(): Promise<void> {
    const proc = spawn(BINARY, ["--config", file, "--nofork", "--runasroot"], {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = proc;
    proc.stdout?.on("data", (d: Buffer) => (output += d.toString()));
    proc.stderr?.on("data", (d: Buffer) => (output += d.toString()));
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`inspircd exited (${proc.exitCode}):\n${output}`);
      if ((await portOpen(port)) && (!extras.tlsPort || (await portOpen(extras.tlsPort)))) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    proc.kill("SIGKILL");
    throw new Error(`inspircd did not listen on ${port} within 15 s:\n${output}`);
  }

  async function stopChild(): Promise<void> {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  }

  await start();
  return {
    host: "127.0.0.1",
    port,
    ...(extras.tlsPort ? { tlsPort: extras.tlsPort } : {}),
    ...(extras.services ? { services: extras.services } : {}),
    dir,
    async stop() {
      await stopChild();
      await rm(dir, { recursive: true, force: true });
    },
    async restart(opts = {}) {
      await stopChild();
      await opts.whileDown?.();
      await start();
    },
  };
}
