/**
 * Locates the first syntax error in a JSON text. `JSON.parse` on Node 20 does not always say where
 * it failed ("Unexpected token '}', ... is not valid JSON"), and issue 5 wants line and column, so on
 * failure (only then: this is slower than JSON.parse) the text is re-scanned by this small validator.
 */

/** A syntax error's position in the text (0-based index) and what was expected there. */
export interface JsonSyntaxError {
  index: number;
  message: string;
}

/** Returns the first syntax error in `text`, or undefined if it is valid JSON. */
export function findJsonError(text: string): JsonSyntaxError | undefined {
  let i = 0;
  const n = text.length;
  class Stop {
    constructor(readonly e: JsonSyntaxError) {}
  }
  const fail = (message: string): never => {
    throw new Stop({ index: i, message });
  };
  const describe = () => (i >= n ? 'end of input' : `${JSON.stringify(text[i])}`);
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };
  const str = () => {
    i++; // opening quote
    for (;;) {
      if (i >= n) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c < 0x20) fail('control character in string (newlines must be escaped)');
      if (c === 0x5c) {
        i++;
        const e = text[i];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail('bad \\u escape');
          i += 5;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i++;
        else fail(`bad escape \\${e ?? ''}`);
      } else i++;
    }
  };
  const num = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m || m[0].length === 0) fail(`unexpected ${describe()}`);
    i += m![0].length;
  };
  const value = (depth: number): void => {
    if (depth > 10000) fail('nesting too deep');
    ws();
    if (i >= n) fail('unexpected end of input, expected a value');
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail(`expected a property name in double quotes, found ${describe()}`);
        str();
        ws();
        if (text[i] !== ':') fail(`expected ':' after property name, found ${describe()}`);
        i++;
        value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        fail(`expected ',' or '}' after property value, found ${describe()}`);
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        fail(`expected ',' or ']' after array element, found ${describe()}`);
      }
    } else if (c === '"') str();
    else if (c === 't' || c === 'f' || c === 'n') {
      const word = c === 't' ? 'true' : c === 'f' ? 'false' : 'null';
      if (text.startsWith(word, i)) i += word.length;
      else fail(`unexpected ${describe()}`);
    } else if (c === '-' || (c >= '0' && c <= '9')) num();
    else fail(`unexpected ${describe()}, expected a value`);
  };
  try {
    value(0);
    ws();
    if (i < n) fail(`unexpected ${describe()} after the end of the JSON value`);
    return undefined;
  } catch (e) {
    if (e instanceof Stop) return e.e;
    throw e;
  }
}

/** Line (1-based) and column (1-based, in UTF-16 code units) of `index` in `text`, offset by a starting line/column. */
export function lineColumn(text: string, index: number, startLine = 1, startColumn = 1): { line: number; column: number } {
  let line = startLine;
  let col = startColumn;
  for (let k = 0; k < index && k < text.length; k++) {
    if (text.charCodeAt(k) === 0x0a) {
      line++;
      col = 1;
    } else col++;
  }
  return { line, column: col };
}
