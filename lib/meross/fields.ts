import type { z } from "zod";

/** Validates a caller's value; secrets are named but never echoed. */
export function checkedInput<S extends z.ZodType>(
  schema: S,
  value: unknown,
  field: string,
  secret = false,
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const shown = secret ? "" : ` ${JSON.stringify(value)}`;
  throw new RangeError(`${field}${shown} ${result.error.issues[0]?.message ?? "is not valid"}`);
}

/** The same object without the fields that are `undefined`, so optional fields are absent, not null-ish. */
export function withoutUndefined<T extends Record<string, unknown>>(
  value: T,
): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as never;
}
