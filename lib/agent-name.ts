/**
 * The name an agent gets when none is given: "calm-falcon", the same scheme
 * for P2P and the hub. With a seed (a pi session id) the name is a pure
 * function of it, so a session keeps its name across stop/start and reloads
 * on both systems; without one it is random. A taken name is suffixed by
 * the system that registers it (calm-falcon2), never here.
 */
import { createHash, randomBytes } from "node:crypto";

const ADJECTIVES = [
  "amber",
  "bold",
  "brisk",
  "calm",
  "clear",
  "deft",
  "eager",
  "fair",
  "fleet",
  "gentle",
  "glad",
  "grand",
  "jolly",
  "keen",
  "kind",
  "lively",
  "lucid",
  "merry",
  "mild",
  "neat",
  "nimble",
  "noble",
  "plucky",
  "proud",
  "quick",
  "quiet",
  "rapid",
  "sage",
  "sharp",
  "steady",
  "sunny",
  "swift",
] as const;
const NOUNS = [
  "badger",
  "bison",
  "crane",
  "dingo",
  "eagle",
  "egret",
  "falcon",
  "ferret",
  "finch",
  "gecko",
  "heron",
  "hawk",
  "ibex",
  "jackal",
  "koala",
  "koi",
  "lark",
  "lemur",
  "lynx",
  "marten",
  "mink",
  "newt",
  "ocelot",
  "orca",
  "otter",
  "owl",
  "panda",
  "puffin",
  "raven",
  "robin",
  "tapir",
  "wren",
] as const;

/** "adjective-noun": from the seed when given (stable), else random. */
export function generatedName(seed?: string): string {
  const bytes = seed === undefined ? randomBytes(2) : createHash("sha256").update(seed).digest();
  const adjective = ADJECTIVES[(bytes[0] ?? 0) % ADJECTIVES.length] as string;
  const noun = NOUNS[(bytes[1] ?? 0) % NOUNS.length] as string;
  return `${adjective}-${noun}`;
}
