/** The plugin contract: everything a plugin under plugins/ may import. */
export * from "./errors.js";
export * from "./durations.js";
export * from "./fields.js";
export type * from "./types.js";
export * from "./cidr.js";
export * from "./glob.js";
export * from "./token-fields.js";
export * from "./database.js";
