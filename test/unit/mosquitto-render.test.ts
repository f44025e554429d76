import { describe, expect, it } from "vitest";
import { DEFAULT_MAX_MESSAGE_BYTES } from "../../lib/agent/session.ts";
import { containerPaths } from "../../lib/mosquitto/paths.ts";
import {
  BROKER_LIMITS,
  DEFAULT_ACL_CACHE_SECONDS,
  DEFAULT_AUTH_CACHE_SECONDS,
  MosquittoConfigError,
  type MosquittoSettings,
  renderMosquittoConf,
} from "../../lib/mosquitto/render.ts";
import { PBKDF2_ITERATIONS, PBKDF2_KEY_LENGTH } from "../../lib/store/hash.ts";
import { GO_AUTH_QUERIES } from "../../lib/store/queries.ts";

interface Directive {
  name: string;
  value: string;
}

/** Reads the text the way Mosquitto does: one directive per line, `#` lines are comments, the value is the rest. */
function directives(text: string): Directive[] {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => {
      const space = line.search(/\s/);
      return space === -1
        ? { name: line, value: "" }
        : { name: line.slice(0, space), value: line.slice(space).trim() };
    });
}

/** Global directives before the first listener, and each listener with the directives that follow it. */
function listeners(text: string): { port: string; address: string; options: Map<string, string> }[] {
  const result: { port: string; address: string; options: Map<string, string> }[] = [];
  for (const directive of directives(text)) {
    if (directive.name === "listener") {
      const [port = "", address = ""] = directive.value.split(/\s+/);
      result.push({ port, address, options: new Map() });
    } else if (result.length > 0 && LISTENER_OPTIONS.has(directive.name)) {
      result.at(-1)?.options.set(directive.name, directive.value);
    }
  }
  return result;
}

const LISTENER_OPTIONS = new Set([
  "protocol",
  "cafile",
  "certfile",
  "keyfile",
  "tls_version",
  "require_certificate",
  "ciphers",
]);

function values(text: string, name: string): string[] {
  return directives(text)
    .filter((directive) => directive.name === name)
    .map((directive) => directive.value);
}

function single(text: string, name: string): string | undefined {
  const found = values(text, name);
  expect(found.length, `${name} appears ${found.length} times`).toBeLessThanOrEqual(1);
  return found[0];
}

const tls = {
  port: 8883,
  bindAddress: "0.0.0.0",
  cafile: containerPaths.caFile,
  certfile: containerPaths.certFile,
  keyfile: containerPaths.keyFile,
};

const anonymous: MosquittoSettings = {
  variant: "anonymous",
  tls,
  persistenceDir: containerPaths.persistenceDir,
};

const mysql: MosquittoSettings = {
  variant: "mysql",
  tls,
  persistenceDir: containerPaths.persistenceDir,
  mysql: {
    host: "database",
    port: 3306,
    user: "broker",
    password: "s3cret-Pass_word!",
    database: "mqtt",
    pluginPath: containerPaths.goAuthPlugin,
  },
};

describe("renderMosquittoConf, both variants", () => {
  it.each([anonymous, mysql])(
    "$variant: one TLS listener with TLS 1.2 minimum and the uploaded cert paths",
    (settings) => {
      const text = renderMosquittoConf(settings);
      const [listener, ...others] = listeners(text);
      expect(others).toEqual([]);
      expect(listener?.port).toBe("8883");
      expect(listener?.address).toBe("0.0.0.0");
      expect(listener?.options.get("cafile")).toBe(containerPaths.caFile);
      expect(listener?.options.get("certfile")).toBe(containerPaths.certFile);
      expect(listener?.options.get("keyfile")).toBe(containerPaths.keyFile);
      expect(listener?.options.get("tls_version")).toBe("tlsv1.2");
      expect(listener?.options.get("protocol")).toBe("mqtt");
    },
  );

  it.each([anonymous, mysql])(
    "$variant: one set of auth settings, persistence, logs to stdout with timestamps",
    (settings) => {
      const text = renderMosquittoConf(settings);
      expect(single(text, "per_listener_settings")).toBe("false");
      expect(single(text, "persistence")).toBe("true");
      expect(single(text, "persistence_location")).toBe(containerPaths.persistenceDir);
      expect(single(text, "log_dest")).toBe("stdout");
      expect(single(text, "log_timestamp")).toBe("true");
    },
  );

  it.each([anonymous, mysql])(
    "$variant: turns Nagle's algorithm off, so a command and its reply do not wait for delayed ACKs",
    (settings) => {
      expect(single(renderMosquittoConf(settings), "set_tcp_nodelay")).toBe("true");
    },
  );

  it.each([anonymous, mysql])(
    "$variant: adds a plain listener only when asked, on the named address",
    (settings) => {
      const text = renderMosquittoConf({ ...settings, plainListener: { address: "127.0.0.1", port: 1883 } });
      const plain = listeners(text)[1];
      expect(listeners(text)).toHaveLength(2);
      expect(plain?.port).toBe("1883");
      expect(plain?.address).toBe("127.0.0.1");
      expect(plain?.options.has("certfile")).toBe(false);
    },
  );

  it("logs errors to information by default, and debug (where ACL denials are) only when asked", () => {
    expect(values(renderMosquittoConf(mysql), "log_type")).toEqual([
      "error",
      "warning",
      "notice",
      "information",
    ]);
    expect(values(renderMosquittoConf({ ...mysql, debugLog: true }), "log_type")).toEqual([
      "error",
      "warning",
      "notice",
      "information",
      "debug",
    ]);
  });

  it("renders the same text for the same settings", () => {
    expect(renderMosquittoConf(mysql)).toBe(renderMosquittoConf(structuredClone(mysql)));
  });

  it("ends with exactly one newline and no runs of blank lines", () => {
    const text = renderMosquittoConf(mysql);
    expect(text.endsWith("\n")).toBe(true);
    expect(text.endsWith("\n\n")).toBe(false);
    expect(text).not.toMatch(/\n\n\n/);
  });
});

describe("renderMosquittoConf, anonymous", () => {
  it("lets anyone in and loads no auth plugin", () => {
    const text = renderMosquittoConf(anonymous);
    expect(single(text, "allow_anonymous")).toBe("true");
    expect(values(text, "auth_plugin")).toEqual([]);
    expect(directives(text).filter((directive) => directive.name.startsWith("auth_opt_"))).toEqual([]);
  });

  it("ignores database settings it was given", () => {
    const text = renderMosquittoConf({ ...anonymous, mysql: mysql.mysql });
    expect(text).not.toContain("s3cret");
  });
});

describe("renderMosquittoConf, mysql", () => {
  const text = renderMosquittoConf(mysql);

  it("requires a login and loads go-auth from the image's path", () => {
    expect(single(text, "allow_anonymous")).toBe("false");
    expect(single(text, "auth_plugin")).toBe(containerPaths.goAuthPlugin);
    expect(single(text, "auth_opt_backends")).toBe("mysql");
  });

  it("connects to the database container with the broker's account", () => {
    expect(single(text, "auth_opt_mysql_host")).toBe("database");
    expect(single(text, "auth_opt_mysql_port")).toBe("3306");
    expect(single(text, "auth_opt_mysql_user")).toBe("broker");
    expect(single(text, "auth_opt_mysql_password")).toBe("s3cret-Pass_word!");
    expect(single(text, "auth_opt_mysql_dbname")).toBe("mqtt");
    expect(single(text, "auth_opt_mysql_allow_native_passwords")).toBe("true");
  });

  it("uses the store's parameterised queries verbatim", () => {
    expect(single(text, "auth_opt_mysql_userquery")).toBe(GO_AUTH_QUERIES.user);
    expect(single(text, "auth_opt_mysql_aclquery")).toBe(GO_AUTH_QUERIES.acl);
    expect(GO_AUTH_QUERIES.user).toContain("?");
    expect(GO_AUTH_QUERIES.acl).toContain("?");
    if (GO_AUTH_QUERIES.superuser) {
      expect(single(text, "auth_opt_mysql_superquery")).toBe(GO_AUTH_QUERIES.superuser);
    } else {
      expect(single(text, "auth_opt_disable_superuser")).toBe("true");
    }
  });

  it("hashes like lib/store/hash.ts: pbkdf2, sha512, same iterations and key length", () => {
    expect(single(text, "auth_opt_hasher")).toBe("pbkdf2");
    expect(single(text, "auth_opt_hasher_algorithm")).toBe("sha512");
    expect(single(text, "auth_opt_hasher_iterations")).toBe(String(PBKDF2_ITERATIONS));
    expect(single(text, "auth_opt_hasher_keylen")).toBe(String(PBKDF2_KEY_LENGTH));
    expect(single(text, "auth_opt_hasher_salt_encoding")).toBe("base64");
  });

  it("bounds packets and queues, refuses retained messages and duplicate deliveries, in both variants", () => {
    for (const config of [text, renderMosquittoConf({ ...mysql, variant: "anonymous", mysql: undefined })]) {
      expect(single(config, "max_packet_size")).toBe(String(BROKER_LIMITS.maxPacketBytes));
      expect(single(config, "retain_available")).toBe("false");
      expect(single(config, "max_queued_messages")).toBe(String(BROKER_LIMITS.maxQueuedMessages));
      expect(single(config, "max_queued_bytes")).toBe(String(BROKER_LIMITS.maxQueuedBytes));
      expect(single(config, "persistent_client_expiration")).toBe("7d");
      expect(single(config, "allow_duplicate_messages")).toBe("false");
    }
    // Larger than the agent's own bound, so the agent's check is the one that drops 64 KiB to 256 KiB.
    expect(BROKER_LIMITS.maxPacketBytes).toBeGreaterThan(DEFAULT_MAX_MESSAGE_BYTES);
  });

  it("waits for the database at start, retries a failed check once, and renews pooled connections", () => {
    expect(single(text, "auth_opt_mysql_connect_tries")).toBe("-1");
    expect(single(text, "auth_opt_retry_count")).toBe("1");
    expect(single(text, "auth_opt_mysql_max_life_time")).toBe("300");
  });

  it("caches answers for the documented default TTLs, without refreshing on every hit", () => {
    expect(single(text, "auth_opt_cache")).toBe("true");
    expect(single(text, "auth_opt_cache_refresh")).toBe("false");
    expect(single(text, "auth_opt_auth_cache_seconds")).toBe(String(DEFAULT_AUTH_CACHE_SECONDS));
    expect(single(text, "auth_opt_acl_cache_seconds")).toBe(String(DEFAULT_ACL_CACHE_SECONDS));
  });

  const withCache = (authCacheSeconds: number, aclCacheSeconds: number) =>
    renderMosquittoConf({
      ...mysql,
      mysql: {
        ...(mysql.mysql as NonNullable<MosquittoSettings["mysql"]>),
        authCacheSeconds,
        aclCacheSeconds,
      },
    });

  it("takes configured TTLs", () => {
    const custom = withCache(5, 7);
    expect(single(custom, "auth_opt_auth_cache_seconds")).toBe("5");
    expect(single(custom, "auth_opt_acl_cache_seconds")).toBe("7");
  });

  it("turns go-auth's cache off when both TTLs are 0, instead of rendering 0 (which go-auth reads as 60 s)", () => {
    const off = withCache(0, 0);
    expect(single(off, "auth_opt_cache")).toBe("false");
    expect(off).not.toMatch(/^auth_opt_\w+_cache_seconds/m);
  });

  it("refuses a single 0 TTL, which go-auth would turn into its 60 s default", () => {
    expect(() => withCache(30, 0)).toThrow(/both be 0 \(go-auth's cache off\) or both at least 1/);
    expect(() => withCache(0, 30)).toThrow(MosquittoConfigError);
  });

  it("keeps auth global when a plain listener is added, so plain MQTT needs a login too", () => {
    const withPlain = renderMosquittoConf({ ...mysql, plainListener: { address: "127.0.0.1", port: 1883 } });
    expect(single(withPlain, "per_listener_settings")).toBe("false");
    expect(single(withPlain, "allow_anonymous")).toBe("false");
  });

  it("refuses the mysql variant without a database", () => {
    expect(() => renderMosquittoConf({ ...mysql, mysql: undefined })).toThrow(
      /mysql variant needs the database/,
    );
  });
});

describe("renderMosquittoConf refuses values that could add or break directives", () => {
  const database = mysql.mysql as NonNullable<MosquittoSettings["mysql"]>;
  it.each<[string, MosquittoSettings, RegExp]>([
    [
      "a bind address with a new line",
      { ...anonymous, tls: { ...tls, bindAddress: "0.0.0.0\nallow_anonymous true" } },
      /tls\.bindAddress "0\.0\.0\.0\\nallow_anonymous true": must be an IPv4 address/,
    ],
    [
      "a host name as bind address",
      { ...anonymous, tls: { ...tls, bindAddress: "broker.lan" } },
      /tls\.bindAddress/,
    ],
    [
      "a port out of range",
      { ...anonymous, tls: { ...tls, port: 70000 } },
      /tls\.port 70000: must be a port/,
    ],
    [
      "a relative cert path",
      { ...anonymous, tls: { ...tls, certfile: "certs/server.crt" } },
      /tls\.certfile/,
    ],
    [
      "a path with a space",
      { ...anonymous, tls: { ...tls, keyfile: "/a b/key" } },
      /tls\.keyfile "\/a b\/key"/,
    ],
    ["a path with a new line", { ...anonymous, persistenceDir: "/data\nlistener 1" }, /persistenceDir/],
    [
      "a plain listener address with a new line",
      { ...anonymous, plainListener: { address: "127.0.0.1\nlistener 1884", port: 1883 } },
      /plainListener\.address/,
    ],
    ["a database host with a new line", { ...mysql, mysql: { ...database, host: "db\nx" } }, /mysql\.host/],
    ["a user with a space", { ...mysql, mysql: { ...database, user: "bro ker" } }, /mysql\.user "bro ker"/],
    ["a database with a quote", { ...mysql, mysql: { ...database, database: "mq'tt" } }, /mysql\.database/],
    [
      "a negative cache TTL",
      { ...mysql, mysql: { ...database, aclCacheSeconds: -1 } },
      /mysql\.aclCacheSeconds -1/,
    ],
    ["an unknown variant", { ...anonymous, variant: "open" as "anonymous" }, /variant "open"/],
  ])("%s", (_, settings, message) => {
    expect(() => renderMosquittoConf(settings)).toThrow(MosquittoConfigError);
    expect(() => renderMosquittoConf(settings)).toThrow(message);
  });

  it.each(["pass\nallow_anonymous true", "with space", ""])(
    "a password %j, without printing it",
    (password) => {
      const attempt = () => renderMosquittoConf({ ...mysql, mysql: { ...database, password } });
      expect(attempt).toThrow(/mysql\.password: must be 1 to 128 printable ASCII characters/);
      try {
        attempt();
      } catch (error) {
        if (password) expect((error as Error).message).not.toContain(password);
      }
    },
  );
});
