export * from "./admin.ts";
export * from "./client.ts";
export * from "./errors.ts";
export * from "./ids.ts";
export * from "./router.ts";
export * from "./schemas.ts";
