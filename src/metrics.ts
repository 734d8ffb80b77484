// Metrics in the Prometheus text exposition format (version 0.0.4), without a dependency: counters, gauges read when
// scraped, and histograms, each family with fixed label names. Label values are bounded by construction: they come
// from the configuration and the catalog (route, server, tool names), from fixed lists (methods, outcomes, OAuth
// error codes), never from what a request says — an unknown value is counted as "other".

export type Labels = Record<string, string>;

interface Family {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram";
  render(out: string[]): void;
}

/** `{a="x",b="y"}` with the exposition format's escaping (backslash, double quote, newline). */
function labelText(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return "";
  const parts = names.map(
    (n, i) => `${n}="${(values[i] ?? "").replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`,
  );
  return `{${parts.join(",")}}`;
}

function number(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(v);
}

/** At most this many label combinations per family: past it, new ones are counted under "other". */
const MAX_SERIES = 5_000;

export class Counter {
  private readonly values = new Map<string, { labels: string[]; value: number }>();
  constructor(private readonly names: readonly string[]) {}

  inc(labels: readonly string[] = [], by = 1): void {
    let key = labels.join("\u0000");
    let entry = this.values.get(key);
    if (!entry) {
      // Past the bound, a new combination is counted under "other" in every label.
      const full = this.values.size >= MAX_SERIES;
      const values = full ? this.names.map(() => "other") : [...labels];
      key = values.join("\u0000");
      entry = this.values.get(key) ?? { labels: values, value: 0 };
      this.values.set(key, entry);
    }
    entry.value += by;
  }

  render(name: string, out: string[]): void {
    for (const { labels, value } of this.values.values()) {
      out.push(`${name}${labelText(this.names, labels)} ${number(value)}`);
    }
  }
}

export class Histogram {
  private readonly series = new Map<string, { labels: string[]; counts: number[]; sum: number; count: number }>();
  constructor(
    private readonly names: readonly string[],
    private readonly buckets: readonly number[],
  ) {}

  observe(labels: readonly string[], value: number): void {
    const key = labels.join("\u0000");
    let s = this.series.get(key);
    if (!s) {
      if (this.series.size >= MAX_SERIES) return;
      s = { labels: [...labels], counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    for (let i = 0; i < this.buckets.length; i++)
      if (value <= (this.buckets[i] as number)) s.counts[i] = (s.counts[i] ?? 0) + 1;
    s.sum += value;
    s.count++;
  }

  render(name: string, out: string[]): void {
    const le = [...this.names, "le"];
    for (const s of this.series.values()) {
      this.buckets.forEach((b, i) => {
        out.push(`${name}_bucket${labelText(le, [...s.labels, number(b)])} ${s.counts[i]}`);
      });
      out.push(`${name}_bucket${labelText(le, [...s.labels, "+Inf"])} ${s.count}`);
      out.push(`${name}_sum${labelText(this.names, s.labels)} ${number(s.sum)}`);
      out.push(`${name}_count${labelText(this.names, s.labels)} ${s.count}`);
    }
  }
}

/** Latency buckets in seconds, from a cached answer to a slow backend. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class MetricsRegistry {
  private readonly families: Family[] = [];

  counter(name: string, help: string, labels: readonly string[] = []): Counter {
    const c = new Counter(labels);
    this.families.push({ name, help, type: "counter", render: (out) => c.render(name, out) });
    return c;
  }

  histogram(name: string, help: string, labels: readonly string[], buckets = LATENCY_BUCKETS): Histogram {
    const h = new Histogram(labels, buckets);
    this.families.push({ name, help, type: "histogram", render: (out) => h.render(name, out) });
    return h;
  }

  /** A gauge read when scraped: `read` gives each series' labels and value. */
  gauge(name: string, help: string, labels: readonly string[], read: () => [string[], number][]): void {
    this.families.push({
      name,
      help,
      type: "gauge",
      render: (out) => {
        for (const [values, v] of read()) out.push(`${name}${labelText(labels, values)} ${number(v)}`);
      },
    });
  }

  render(): string {
    const out: string[] = [];
    for (const f of this.families) {
      out.push(`# HELP ${f.name} ${f.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
      out.push(`# TYPE ${f.name} ${f.type}`);
      f.render(out);
    }
    return `${out.join("\n")}\n`;
  }
}

/** A value kept as is when it is one of `known`, else "other". */
export function bounded(value: string | undefined, known: ReadonlySet<string>): string {
  return value !== undefined && known.has(value) ? value : "other";
}
