/**
 * pi-coms for scripts (`import { connectPeer, connectHub, serve } from "pi-coms/client"`):
 * the same typed client the pi extension uses, over P2P sockets or a hub.
 */
export type {
  AwaitOptions,
  ComsClient,
  ConnectionState,
  ConnectionStatus,
  Transport,
} from "../contract/client.ts";
export { ComsError } from "../contract/errors.ts";
export type {
  AgentCard,
  AgentStatus,
  CardPatch,
  ErrorCode,
  Message,
  Outcome,
  ReplyResult,
  SendAck,
  SendInput,
} from "../contract/schemas.ts";
export { type ConnectHubOptions, type ConnectPeerOptions, connectHub, connectPeer } from "./connect.ts";
export { type ServeHandler, type ServeOptions, type ServeReply, type Serving, serve } from "./serve.ts";
