/**
 * The messages the kit sends and reads, one file per namespace family: the request a client sends
 * (a builder), and a zod parser for what comes back. Device-side helpers (for the simulator) sit
 * beside the message they belong to. A new message type goes in its family's file (or a new one,
 * re-exported here); payload parsing helpers are in payload.ts.
 */
export * from "./config-key.ts";
export * from "./config-wifi.ts";
export * from "./encrypt.ts";
export * from "./namespace.ts";
export * from "./session.ts";
export * from "./system.ts";
export * from "./toggle.ts";
