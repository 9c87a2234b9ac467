/**
 * The frames the P2P transport carries over a node-ipc Unix socket. Every
 * frame travels as the node-ipc event `coms`; its data is one of these
 * envelopes. Inputs, results and error shapes inside are superjson-encoded
 * by the router's transformer, so they stay opaque (`unknown`) here and are
 * validated by the procedure's own schemas once decoded.
 */
import { z } from "zod";

/** The one node-ipc event type pi-coms uses on a peer socket. */
export const FRAME_EVENT = "coms";

/** Per-connection request id, chosen by the client. */
export const FrameId = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
export const ProcedureType = z.enum(["query", "mutation", "subscription"]);

/** Client → server: call a procedure (a subscription keeps streaming until it ends or is stopped). */
export const RequestFrame = z.object({
  k: z.literal("req"),
  id: FrameId,
  type: ProcedureType,
  path: z.string().min(1).max(200),
  input: z.unknown().optional(),
});

/** Client → server: stop a running subscription. */
export const StopFrame = z.object({ k: z.literal("stop"), id: FrameId });

export const ClientFrame = z.discriminatedUnion("k", [RequestFrame, StopFrame]);

/** Server → client: a query/mutation result, or one item of a subscription. */
export const DataFrame = z.object({ k: z.literal("data"), id: FrameId, data: z.unknown() });
/** Server → client: the subscription is running. */
export const StartedFrame = z.object({ k: z.literal("started"), id: FrameId });
/** Server → client: the subscription ended (its source finished or it was stopped). */
export const StoppedFrame = z.object({ k: z.literal("stopped"), id: FrameId });
/**
 * Server → client: the call failed. `id` is null when the offending frame
 * carried no usable id (malformed or oversized); `error` is the router's
 * formatted error shape, transformer-encoded.
 */
export const ErrorFrame = z.object({ k: z.literal("error"), id: FrameId.nullable(), error: z.unknown() });

export const ServerFrame = z.discriminatedUnion("k", [DataFrame, StartedFrame, StoppedFrame, ErrorFrame]);

/** The decoded error shape a client needs to rebuild a TRPCClientError. */
export const ErrorShape = z.looseObject({
  code: z.number().int(),
  message: z.string(),
  data: z.looseObject({ coms_code: z.string().nullish() }).optional(),
});

export type RequestFrame = z.infer<typeof RequestFrame>;
export type ClientFrame = z.infer<typeof ClientFrame>;
export type ServerFrame = z.infer<typeof ServerFrame>;
export type ErrorShape = z.infer<typeof ErrorShape>;

type Parsed<T> = { success: true; data: T } | { success: false; error: z.ZodError };

function isFrameId(id: unknown): id is number {
  return Number.isSafeInteger(id) && (id as number) >= 0;
}

const PROCEDURE_TYPES: ReadonlySet<unknown> = new Set(ProcedureType.options);

/**
 * ClientFrame.safeParse, with the schema run only for a frame that is not
 * plainly one of its shapes (every frame costs one check, a bad one gets
 * zod's error). A frame accepted here is read as is: only its known fields
 * are used, so keys zod would strip are simply never looked at.
 */
export function parseClientFrame(data: unknown): Parsed<ClientFrame> {
  const frame = data as Record<string, unknown> | null;
  if (typeof frame === "object" && frame !== null && isFrameId(frame.id)) {
    if (
      frame.k === "req" &&
      PROCEDURE_TYPES.has(frame.type) &&
      typeof frame.path === "string" &&
      frame.path.length >= 1 &&
      frame.path.length <= 200
    ) {
      return { success: true, data: frame as RequestFrame };
    }
    if (frame.k === "stop") return { success: true, data: frame as ClientFrame };
  }
  return ClientFrame.safeParse(data);
}

/** ServerFrame.safeParse, the same way as parseClientFrame. */
export function parseServerFrame(data: unknown): Parsed<ServerFrame> {
  const frame = data as Record<string, unknown> | null;
  if (typeof frame === "object" && frame !== null) {
    const { k } = frame;
    const id = isFrameId(frame.id);
    // zod wants the `data` and `error` keys present, even when their value is undefined.
    if (
      ((k === "started" || k === "stopped") && id) ||
      (k === "data" && id && "data" in frame) ||
      (k === "error" && (id || frame.id === null) && "error" in frame)
    ) {
      return { success: true, data: frame as ServerFrame };
    }
  }
  return ServerFrame.safeParse(data);
}
