-- Prosody 0.12 for the docker-compose demo (docker-compose.yml at the repo root).
-- https://prosody.im/doc/configure
--
-- Values from the container's environment are read as ENV_<NAME> (Prosody's
-- config parser resolves ENV_ names with os.getenv). docker-compose.yml passes:
--   ESTUARY_XMPP_DOMAIN  the XMPP domain users log in to (default "localhost")
--   ESTUARY_IRC_SECRET   the XEP-0114 secret Estuary's IRC component presents
--
-- DEMO SETTINGS: clients may log in without TLS (PLAIN over plaintext), which
-- is acceptable only because docker-compose.yml publishes 5222 on 127.0.0.1.
-- For a real deployment put certificates in /etc/prosody/certs, set
-- c2s_require_encryption = true and drop allow_unencrypted_plain_auth.

local domain = ENV_ESTUARY_XMPP_DOMAIN or "localhost"
local irc_secret = ENV_ESTUARY_IRC_SECRET
if not irc_secret or irc_secret == "" then
  error("ESTUARY_IRC_SECRET must be set in Prosody's environment")
end

admins = { }
modules_enabled = {
  "roster"; "saslauth"; "tls"; "disco"; "ping"; "presence"; "private";
  "blocklist"; "carbons"; "pep"; "bookmarks"; "vcard_legacy"; "version";
  "time"; "uptime"; "mam"; "register";
}
-- Accounts are created by the operator (prosodyctl register), not by anyone.
allow_registration = false

data_path = "/var/lib/prosody"
certificates = "certs"
log = { info = "*console" }
storage = "internal"
authentication = "internal_hashed"

-- Clients on the published port; no federation in the demo.
c2s_ports = { 5222 }
s2s_ports = { }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true

-- XEP-0114 component listener. Estuary reaches it over the compose network,
-- so it listens on all of the container's interfaces; docker-compose.yml does
-- not publish port 5347, so nothing outside the compose network can reach it.
component_ports = { 5347 }
component_interfaces = { "*" }

VirtualHost (domain)
  -- Lists the gateway in users' service discovery (XEP-0030).
  disco_items = { { "irc." .. domain, "IRC gateway" } }

-- Estuary's IRC network: networks.irc.domain and secret in deploy/estuary.yaml.
Component ("irc." .. domain)
  component_secret = irc_secret

Component ("conference." .. domain) "muc"
  muc_room_locking = false
