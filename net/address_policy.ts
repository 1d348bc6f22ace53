/**
 * Which addresses a crawl may connect to. A URL may reach an address class only where the page
 * that led to it (its scope: the source row's page) is in that class, so a public page can never
 * make facefield connect to 10.x, 169.254.169.254, ::1 or fc00::/7. The check runs on the
 * resolved address, at connect time and for every redirect hop, so DNS rebinding and odd
 * spellings (`http://2852039166/`, `0x7f.1`, `[::ffff:169.254.169.254]`) cannot get around it:
 * the WHATWG URL parser turns every IPv4 spelling into dotted form, and IPv6 addresses that embed
 * an IPv4 address are classed by the embedded one.
 */
import { lookup } from "node:dns/promises";

/** `reserved` (unspecified, multicast, broadcast, 240/4, …) is never connected to. */
export type AddressClass = "loopback" | "private" | "link-local" | "public" | "reserved";

/** Turns a host name into the addresses it stands for (IPv4 dotted or IPv6 text). */
export type Resolver = (hostname: string) => Promise<string[]>;

/** The system's resolver (getaddrinfo, so /etc/hosts and intranet names work). */
export const systemResolver: Resolver = async (hostname) => {
  const answers = await lookup(hostname, { all: true, verbatim: true });
  return answers.map((answer) => answer.address);
};

/** Parses dotted IPv4 (exactly four decimal parts, as the URL parser writes them). */
function parseIpv4(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || parts.some((part) => !/^\d{1,3}$/.test(part))) return undefined;
  const bytes = parts.map(Number);
  return bytes.every((byte) => byte <= 255) ? bytes : undefined;
}

/** Parses IPv6 text (with `::`, an embedded IPv4 tail and an optional zone) into 8 groups. */
function parseIpv6(text: string): number[] | undefined {
  let address = text.replace(/^\[|\]$/g, "").replace(/%.*$/, "").toLowerCase();
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (tail) {
    const v4 = parseIpv4(tail[1]!);
    if (!v4) return undefined;
    const high = ((v4[0]! << 8) | v4[1]!).toString(16);
    const low = ((v4[2]! << 8) | v4[3]!).toString(16);
    address = `${address.slice(0, tail.index)}${high}:${low}`;
  }
  const halves = address.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string | undefined) => half ? half.split(":") : [];
  const head = groups(halves[0]);
  const rest = groups(halves[1]);
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...rest];
  if (all.some((group) => !/^[0-9a-f]{1,4}$/.test(group))) return undefined;
  return all.map((group) => parseInt(group, 16));
}

function classifyIpv4([a = 0, b = 0, c = 0]: number[]): AddressClass {
  if (a === 127) return "loopback";
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return "private";
  // Carrier-grade NAT (100.64/10) holds cloud metadata services too (100.100.100.200).
  if (a === 100 && b >= 64 && b <= 127) return "private";
  // 192.0.0/24 holds protocol assignments; 198.18/15 is for benchmarking networks.
  if ((a === 192 && b === 0 && c === 0) || (a === 198 && (b === 18 || b === 19))) return "private";
  if (a === 169 && b === 254) return "link-local";
  // 0/8 reaches this host on Linux; 224/4 is multicast, 240/4 reserved and the broadcast.
  if (a === 0 || a >= 224) return "reserved";
  return "public";
}

/** The class of an IP address, or undefined when `text` is not an IP address. */
export function addressClass(text: string): AddressClass | undefined {
  const v4 = parseIpv4(text);
  if (v4) return classifyIpv4(v4);
  const g = parseIpv6(text);
  if (!g) return undefined;
  const zeros = (from: number, to: number) => g.slice(from, to).every((group) => group === 0);
  const embedded = (hi: number, lo: number) => [hi >> 8, hi & 255, lo >> 8, lo & 255];
  if (zeros(0, 7) && g[7] === 1) return "loopback";
  if (zeros(0, 8)) return "reserved";
  // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d)
  // addresses reach the embedded IPv4 address: class them by it.
  if (zeros(0, 5) && (g[5] === 0xffff || g[5] === 0)) return classifyIpv4(embedded(g[6]!, g[7]!));
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) {
    return classifyIpv4(embedded(g[6]!, g[7]!));
  }
  // 6to4 (2002:a.b.c.d::/48) tunnels to the embedded IPv4 address.
  if (g[0] === 0x2002) return classifyIpv4(embedded(g[1]!, g[2]!));
  const first = g[0]!;
  if ((first & 0xfe00) === 0xfc00) return "private";
  if ((first & 0xffc0) === 0xfe80) return "link-local";
  if ((first & 0xff00) === 0xff00) return "reserved";
  return "public";
}

export interface AddressPolicyOptions {
  /**
   * Let any page reach private and loopback addresses, for intranet crawls. Link-local
   * addresses (where cloud metadata services answer) stay reachable only from a link-local
   * page, and reserved ones never.
   * @default false
   */
  allowPrivate?: boolean;
  /**
   * Resolves host names; tests pass a stub so no query or packet leaves the machine.
   * @default systemResolver
   */
  resolve?: Resolver;
}

/** Why an address may not be connected to, as a permanent `blocked_address: …` reason. */
export class BlockedAddressError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = "BlockedAddressError";
  }
}

/** A resolved, checked address to connect to. */
export interface CheckedAddress {
  address: string;
  addressClass: AddressClass;
}

/**
 * The address rules of one run. Scopes' classes are cached per host for the run, so a scope
 * that later resolves elsewhere (rebinding) keeps the class it had first.
 *
 * @example
 * ```ts
 * const policy = new AddressPolicy();
 * const target = await policy.check(new URL("http://10.0.0.1/"), new URL("https://example.org/"));
 * // throws BlockedAddressError("blocked_address: private 10.0.0.1 from a public page")
 * ```
 */
export class AddressPolicy {
  readonly allowPrivate: boolean;
  readonly #resolve: Resolver;
  readonly #scopeClasses = new Map<string, Promise<AddressClass>>();

  constructor(options: AddressPolicyOptions = {}) {
    const { allowPrivate = false, resolve = systemResolver } = options;
    this.allowPrivate = allowPrivate;
    this.#resolve = resolve;
  }

  /** The addresses `hostname` stands for: itself when it is an IP address, else resolved. */
  async addresses(hostname: string): Promise<string[]> {
    const bare = hostname.replace(/^\[|\]$/g, "");
    if (addressClass(bare) !== undefined) return [bare];
    // "localhost" is loopback by definition (RFC 6761), whatever a resolver says.
    if (bare === "localhost" || bare.endsWith(".localhost")) return ["127.0.0.1"];
    // A failed lookup throws the resolver's own error: a network failure, which may pass.
    const answers = await this.#resolve(bare);
    if (answers.length === 0) throw new Error(`no address for the host (ENODATA)`);
    return answers;
  }

  /** The class a scope (the page a request is made for) is in: that of its first address. */
  scopeClass(scope: URL): Promise<AddressClass> {
    let known = this.#scopeClasses.get(scope.hostname);
    if (!known) {
      known = this.addresses(scope.hostname).then((answers) =>
        addressClass(answers[0]!) ?? "reserved"
      );
      // A failed lookup is not cached: the next request may resolve.
      known.catch(() => this.#scopeClasses.delete(scope.hostname));
      this.#scopeClasses.set(scope.hostname, known);
    }
    return known;
  }

  /** Whether a page in class `from` may make us connect to an address in class `to`. */
  allows(from: AddressClass, to: AddressClass): boolean {
    if (to === "reserved") return false;
    if (to === from) return true;
    return this.allowPrivate && (to === "private" || to === "loopback");
  }

  /**
   * Resolves `url`'s host and returns the first address a request for `scope` may connect to;
   * throws BlockedAddressError (never retried) when none may.
   */
  async check(url: URL, scope: URL = url): Promise<CheckedAddress> {
    const from = await this.scopeClass(scope);
    const answers = await this.addresses(url.hostname);
    const classed = answers.map((address) => ({
      address,
      addressClass: addressClass(address) ?? "reserved" as AddressClass,
    }));
    const allowed = classed.find((answer) => this.allows(from, answer.addressClass));
    if (allowed) return allowed;
    const first = classed[0]!;
    throw new BlockedAddressError(
      `blocked_address: ${first.addressClass} ${first.address} from a ${from} page`,
    );
  }
}
