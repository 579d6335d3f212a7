/**
 * A linear pre-scan of a document's nesting, before any parser or recursive walk sees it (docs/limits.md: no
 * request body can end the process or stall the event loop). Deeply nested JSON makes recursive
 * consumers overflow the stack (a 500), and deeply nested YAML makes the YAML parser slow and its
 * error reports huge. Pipeline documents nest a few levels; anything past the bounds here is refused.
 */

/** Most flow nesting (`[`, `{`) of a JSON or YAML document. */
export const MAX_FLOW_DEPTH = 64;
/**
 * Most columns of block structure on one YAML line: its indentation plus two per compact collection
 * indicator (`- - x`, `- a: b`). Each block level needs at least one column.
 */
export const MAX_BLOCK_COLUMNS = 128;

/** Whether `text` nests deeper than the bounds above. Never throws; one pass, no allocation. */
export function nestsTooDeep(text: string, yaml: boolean): boolean {
  let flow = 0;
  let quote = '';
  let lineStart = true;
  let column = 0;
  let block = 0;
  let previous = '\n';
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quote !== '') {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = '';
      else if (c === '\n' && yaml) lineStart = true;
      previous = c;
      continue;
    }
    if (c === '\n') {
      lineStart = true;
      column = 0;
      block = 0;
      previous = c;
      continue;
    }
    if (yaml && lineStart) {
      if (c === ' ') {
        column++;
        previous = c;
        continue;
      }
      lineStart = false;
      block = column;
    }
    if (c === '"' || (c === "'" && (!yaml || /[\s[{,:-]/.test(previous)))) {
      quote = c;
    } else if (c === '[' || c === '{') {
      if (++flow > MAX_FLOW_DEPTH) return true;
    } else if (c === ']' || c === '}') {
      flow = Math.max(0, flow - 1);
    } else if (yaml && c === '#' && /\s/.test(previous)) {
      // A comment: skip to the end of the line.
      while (i + 1 < text.length && text[i + 1] !== '\n') i++;
    } else if (yaml && flow === 0 && /[-?:]/.test(c) && /\s/.test(text[i + 1] ?? ' ')) {
      // A compact block collection indicator on the same line as its parent's.
      block += 2;
      if (block > MAX_BLOCK_COLUMNS) return true;
    }
    if (yaml && block > MAX_BLOCK_COLUMNS) return true;
    previous = c;
  }
  return false;
}
