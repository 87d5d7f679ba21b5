// prom-client writes Prometheus text but does not read it, and `status --watch` needs only samples (name,
// labels, value) from one exporter, ours: a small reader is enough, and comments, HELP and TYPE are skipped.

/** One line of Prometheus text: `name{label="value",...} value`. */
export interface PrometheusSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const SPECIAL_VALUES: Record<string, number> = { '+Inf': Infinity, '-Inf': -Infinity, NaN: NaN };

/** The samples of a Prometheus text exposition; throws an Error naming the line it cannot read. */
export function parsePrometheusText(text: string): PrometheusSample[] {
  const samples: PrometheusSample[] = [];
  for (const [index, rawLine] of text.split('\n').entries()) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const sample = parseSampleLine(line);
    if (sample === undefined) throw new Error(`line ${index + 1} of the metrics is not a Prometheus sample: ${line}`);
    samples.push(sample);
  }
  return samples;
}

function parseSampleLine(line: string): PrometheusSample | undefined {
  const name = NAME.exec(line)?.[0];
  if (name === undefined) return undefined;
  let rest = line.slice(name.length);
  const labels: Record<string, string> = {};
  if (rest.startsWith('{')) {
    rest = rest.slice(1);
    for (;;) {
      rest = rest.trimStart();
      if (rest.startsWith('}')) break;
      const labelName = LABEL_NAME.exec(rest)?.[0];
      if (labelName === undefined || rest[labelName.length] !== '=' || rest[labelName.length + 1] !== '"') return undefined;
      const quoted = readQuoted(rest.slice(labelName.length + 2));
      if (quoted === undefined) return undefined;
      labels[labelName] = quoted.value;
      rest = quoted.rest.trimStart();
      if (rest.startsWith(',')) rest = rest.slice(1);
    }
    rest = rest.slice(1);
  }
  // The value, then an optional timestamp, which a live view does not need.
  const valueText = rest.trim().split(/\s+/)[0] ?? '';
  const value = SPECIAL_VALUES[valueText] ?? (valueText === '' ? NaN : Number(valueText));
  if (Number.isNaN(value) && valueText !== 'NaN') return undefined;
  return { name, labels, value };
}

/** A label value up to its closing quote, with \\, \" and \n unescaped. */
function readQuoted(text: string): { value: string; rest: string } | undefined {
  let value = '';
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === '"') return { value, rest: text.slice(i + 1) };
    if (char === '\\') {
      const next = text[++i];
      value += next === 'n' ? '\n' : (next ?? '');
    } else {
      value += char;
    }
  }
  return undefined;
}
