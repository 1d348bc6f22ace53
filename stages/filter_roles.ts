/**
 * Stage "filter roles": keeps or drops people by the role their page gives them (`--roles`), so
 * a study can leave out secretaries or keep professors only. A dropped person stays in the
 * manifest with the reason, and comes back on a later run whose rules keep them.
 */
import { map, type OperatorFunction } from "rxjs";
import { dropped, ok, type Outcome, type PersonRecord } from "../core/types.ts";

/** Which roles to keep and which to drop, as lower-case word prefixes. */
export interface RoleRules {
  /** When not empty, only people whose role matches one of these stay. */
  keep: string[];
  /** People whose role matches one of these are dropped. */
  drop: string[];
  /** With `keep` rules: also keep people whose page gives no role (`none` in the list). */
  keepNone: boolean;
}

export interface FilterRolesOptions {
  /**
   * The rules; `parseRoleRules("professor,postdoc")` or `parseRoleRules("!secretary")`.
   * @default keep everyone
   */
  rules?: RoleRules;
}

/** The role's words, lower case, dots dropped ("Ph.D. Student" → " phd student"). */
function roleWords(text: string): string {
  return " " + text.toLowerCase().replace(/\./g, "").split(/[^\p{L}\p{N}]+/u).filter(Boolean)
    .join(" ");
}

/**
 * Parses a `--roles` list: comma-separated words; a word keeps the roles it starts a word of
 * (`prof` keeps "Professor", `phd student` keeps "Ph.D. Student"), `!word` drops them, `none`
 * keeps people without a role when there are words to keep.
 *
 * @example
 * ```ts
 * parseRoleRules("!secretary,!administrator"); // drop both, keep everyone else
 * ```
 */
export function parseRoleRules(list: string): RoleRules {
  const rules: RoleRules = { keep: [], drop: [], keepNone: false };
  for (const entry of list.split(",").map((part) => part.trim())) {
    const negated = entry.startsWith("!");
    const words = roleWords(negated ? entry.slice(1) : entry);
    if (words.trim() === "") {
      throw new RangeError(
        `Cannot filter roles as '${list}' has an empty entry: list role words like professor,!secretary`,
      );
    }
    if (!negated && words === " none") rules.keepNone = true;
    else (negated ? rules.drop : rules.keep).push(words);
  }
  return rules;
}

/** Why the rules drop this role, or undefined when they keep it. */
export function roleExclusion(role: string | undefined, rules: RoleRules): string | undefined {
  const words = role ? roleWords(role) : "";
  const dropping = rules.drop.find((rule) => words.includes(rule));
  if (dropping) return `role_excluded: the role matches !${dropping.trim()}`;
  if (rules.keep.length === 0) return undefined;
  if (!role) return rules.keepNone ? undefined : "role_excluded: no role, and --roles keeps some";
  return rules.keep.some((rule) => words.includes(rule))
    ? undefined
    : "role_excluded: the role matches none of the roles kept";
}

/**
 * Stage: each person as an ok outcome, or rejected with `role_excluded` by the rules.
 *
 * @example
 * ```ts
 * people$.pipe(filterRoles({ rules: parseRoleRules("!secretary") }));
 * ```
 */
export function filterRoles(
  options: FilterRolesOptions = {},
): OperatorFunction<PersonRecord, Outcome<PersonRecord>> {
  const { rules = { keep: [], drop: [], keepNone: false } } = options;
  return map((person) => {
    const reason = roleExclusion(person.role, rules);
    return reason === undefined ? ok(person) : dropped("people", "rejected", reason, person);
  });
}
