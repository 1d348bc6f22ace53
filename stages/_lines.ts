/**
 * The line reading that the sources and image-list stages share: bytes or text as they arrive,
 * decoded as UTF-8 across chunk boundaries, cut at newlines, with a line longer than the limit
 * dropped as it grows (memory stays bounded) and reported when it ends.
 */
import type { Observable, Subscriber, Subscription } from "rxjs";

/**
 * Calls `onLine` for every line of `input` (`tooLong` when its text was dropped for the limit),
 * then `onEnd`; what either throws goes to `subscriber` as its error.
 */
export function subscribeLines<T>(
  input: Observable<Uint8Array | string>,
  subscriber: Subscriber<T>,
  maxLineLength: number,
  onLine: (text: string, tooLong: boolean) => void,
  onEnd: () => void,
): Subscription {
  const decoder = new TextDecoder("utf-8", { ignoreBOM: false });
  let pending = "";
  let overlong = false;
  const emit = (text: string) => {
    const tooLong = overlong;
    overlong = false;
    onLine(text, tooLong);
  };
  const consume = (text: string) => {
    pending += text;
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      emit(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
    }
    if (pending.length > maxLineLength) {
      // Keep counting the line but drop its text; it is reported when it ends.
      overlong = true;
      pending = "";
    }
  };
  return input.subscribe({
    next: (chunk) => {
      try {
        consume(typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true }));
      } catch (error) {
        subscriber.error(error);
      }
    },
    error: (error) => subscriber.error(error),
    complete: () => {
      try {
        consume(decoder.decode());
        if (pending !== "" || overlong) emit(pending);
        onEnd();
      } catch (error) {
        subscriber.error(error);
      }
    },
  });
}
