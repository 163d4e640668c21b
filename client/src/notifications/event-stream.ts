import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** Opens the user's notification stream (fetch, so that the token travels in a header). */
export type StreamOpener = (lastEventId: string | undefined, signal: AbortSignal) => Promise<Response>;

/**
 * Reads a text/event-stream body to its end, handing each event to `onEvent` and waiting for it
 * before the next (eventsource-parser does the parsing); `onRetry` gets the server's reconnect hint.
 * A failing `onEvent` ends the reading and closes the stream, and so does a stream that sends
 * nothing (not even a heartbeat) for `silenceMs`: it fails with a TimeoutError.
 */
export async function readEvents(
  body: ReadableStream<Uint8Array>,
  onEvent: (event: EventSourceMessage) => Promise<void>,
  onRetry: (ms: number) => void,
  silenceMs: number,
): Promise<void> {
  const parsed: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => parsed.push(event), onRetry });
  // A reader rather than `for await`: browsers have not all made streams async-iterable.
  const reader = body.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { done, value } = await readWithin(reader, silenceMs);
      if (done) return;
      parser.feed(decoder.decode(value, { stream: true }));
      while (parsed.length > 0) await onEvent(parsed.shift()!);
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    throw error;
  }
}

/** The reader's next chunk, or a TimeoutError when none comes within `ms`. */
function readWithin<T>(reader: ReadableStreamDefaultReader<T>, ms: number): Promise<ReadableStreamReadResult<T>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const silent = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DOMException(`The stream sent nothing for ${ms} ms`, 'TimeoutError')), ms);
  });
  return Promise.race([reader.read(), silent]).finally(() => clearTimeout(timer));
}
