/**
 * A small evaluator for the HCL expressions infra/ uses, built on @cdktf/hcl2json's parse and
 * expression AST. With it the offline tests check what Terraform would compute (the instances each
 * `for_each` creates, each function's environment, each grant) instead of the text that computes it.
 *
 * Values Terraform learns only after apply (ids, emails, URIs, data sources) evaluate to their
 * reference text, e.g. `google_service_account.function["plan_export"].email`, which tests compare as
 * names. Anything the evaluator does not know (a function, an attribute of an object) throws, so a
 * config it cannot follow fails the tests instead of passing them unchecked.
 */
import { getExpressionAst } from '@cdktf/hcl2json';

export type Value = null | string | number | boolean | Value[] | { [k: string]: Value } | Instance;

type Block = Record<string, unknown>;

/** The declarations the evaluator reads (what the tests' model holds). */
export interface Config {
  resource: Record<string, Record<string, Block>>;
  data: Record<string, Record<string, Block>>;
  variable: Record<string, Block>;
  locals: Record<string, unknown>;
}

/** One instance of a resource: `type.name` or `type.name["key"]` for a `for_each` resource. */
export class Instance {
  constructor(
    readonly type: string,
    readonly name: string,
    readonly key: string | undefined,
    readonly each: { key: Value; value: Value } | undefined,
  ) {}
  get address(): string {
    return `${this.type}.${this.name}${this.key === undefined ? '' : `[${JSON.stringify(this.key)}]`}`;
  }
}

interface Node {
  type: string;
  meta?: Record<string, unknown> & { traversal?: { type: string; segment: string }[] };
  children: Node[];
  range: { start: { byte: number }; end: { byte: number } };
}

type Scope = Record<string, Value>;

/** Attributes that are not values of the resource (meta-arguments). */
const META = new Set(['depends_on', 'for_each', 'count', 'lifecycle', 'provider']);

const isObject = (v: Value): v is { [k: string]: Value } => !!v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Instance);

function segmentKey(seg: { type: string; segment: string }): string | number {
  if (seg.type === 'nameTraversal') return seg.segment.replace(/^\./, '');
  const s = seg.segment.replace(/^\[|\]$/g, '');
  return s.startsWith('"') ? (JSON.parse(s) as string) : Number(s);
}

const sortedUnique = (xs: Value[]): Value[] => [...new Set(xs.map((x) => JSON.stringify(x)))].sort().map((s) => JSON.parse(s) as Value);

export class Evaluator {
  private readonly asts = new Map<string, Promise<Node>>();
  private readonly locals = new Map<string, Promise<Value>>();
  private readonly instanceCache = new Map<string, Promise<Instance[]>>();

  constructor(
    private readonly config: Config,
    private readonly vars: Record<string, Value>,
  ) {}

  /** A variable's value: the one given, else its declared default. */
  private async variable(name: string): Promise<Value> {
    if (name in this.vars) return this.vars[name]!;
    const decl = this.config.variable[name];
    if (!decl) throw new Error(`undeclared variable ${name}`);
    if (!('default' in decl)) throw new Error(`variable ${name} has no default and no value was given`);
    return this.value(decl.default, {});
  }

  local(name: string): Promise<Value> {
    let p = this.locals.get(name);
    if (!p) {
      if (!(name in this.config.locals)) throw new Error(`undeclared local ${name}`);
      p = this.value(this.config.locals[name], {});
      this.locals.set(name, p);
    }
    return p;
  }

  /** The instances of a resource (one, or one per `for_each` key in Terraform's key order). */
  instances(type: string, name: string): Promise<Instance[]> {
    const id = `${type}.${name}`;
    let p = this.instanceCache.get(id);
    if (!p) {
      p = (async () => {
        const body = this.config.resource[type]?.[name];
        if (!body) throw new Error(`undeclared resource ${id}`);
        if ('count' in body) throw new Error(`${id}: count is not supported, use for_each`);
        if (!('for_each' in body)) return [new Instance(type, name, undefined, undefined)];
        const fe = await this.value(body.for_each, {});
        if (Array.isArray(fe)) return sortedUnique(fe).map((k) => new Instance(type, name, String(k), { key: k, value: k }));
        if (isObject(fe))
          return Object.keys(fe)
            .sort()
            .map((k) => new Instance(type, name, k, { key: k, value: fe[k]! }));
        throw new Error(`${id}: for_each must be a map or a set, got ${JSON.stringify(fe)}`);
      })();
      this.instanceCache.set(id, p);
    }
    return p;
  }

  /** Every attribute and nested block of an instance, evaluated (meta-arguments left out). */
  async body(inst: Instance): Promise<Record<string, Value>> {
    const body = this.config.resource[inst.type]![inst.name]!;
    const scope: Scope = inst.each ? { each: inst.each as unknown as Value } : {};
    const out: Record<string, Value> = {};
    for (const [k, v] of Object.entries(body)) if (!META.has(k)) out[k] = await this.value(v, scope);
    return out;
  }

  /** Evaluates a value as hcl2json gives it: strings may hold `${…}` templates; arrays and objects recurse. */
  async value(v: unknown, scope: Scope): Promise<Value> {
    if (typeof v === 'string') return v.includes('${') ? this.template(v, scope) : v;
    if (Array.isArray(v)) return Promise.all(v.map((x) => this.value(x, scope)));
    if (v && typeof v === 'object') {
      const out: Record<string, Value> = {};
      for (const [k, x] of Object.entries(v)) out[k] = await this.value(x, scope);
      return out;
    }
    return (v ?? null) as Value;
  }

  private ast(src: string): Promise<Node> {
    let p = this.asts.get(src);
    if (!p) {
      p = getExpressionAst('infra.tf', src).then((n) => {
        if (!n) throw new Error(`cannot parse ${src}`);
        return n as unknown as Node;
      });
      this.asts.set(src, p);
    }
    return p;
  }

  /**
   * A string with interpolations, parsed as a heredoc so HCL itself finds the `${…}` parts (a heredoc
   * needs no escaping of the literal text); a lone interpolation keeps its value's type, as in Terraform.
   */
  private async template(s: string, scope: Scope): Promise<Value> {
    const src = `<<GEOTFR_EOT\n${s}\nGEOTFR_EOT\n`;
    const node = await this.ast(src);
    const parts = node.type === 'templateWrap' ? node.children : node.type === 'template' ? node.children : [node];
    const vals: Value[] = [];
    for (const c of parts) vals.push(c.type === 'literalValue' ? String(c.meta!.value) : await this.eval(c, src, scope));
    const last = vals.length - 1;
    if (parts[last]!.type === 'literalValue') vals[last] = (vals[last] as string).replace(/\n$/, '');
    const exprs = parts.filter((p) => p.type !== 'literalValue').length;
    const literalText = vals.filter((_, i) => parts[i]!.type === 'literalValue').join('');
    if (exprs === 1 && literalText === '') return vals[parts.findIndex((p) => p.type !== 'literalValue')]!;
    return vals.map((x) => this.str(x, s)).join('');
  }

  private str(v: Value, where: string): string {
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    throw new Error(`cannot interpolate ${JSON.stringify(v)} into a string (${where})`);
  }

  private text(src: string, node: Node): string {
    return Buffer.from(src).subarray(node.range.start.byte, node.range.end.byte).toString();
  }

  private async eval(n: Node, src: string, scope: Scope): Promise<Value> {
    const meta = n.meta ?? {};
    const ev = (c: Node, s: Scope = scope) => this.eval(c, src, s);
    switch (n.type) {
      case 'literalValue':
        if (meta.type === 'number') return Number(meta.value);
        if (meta.type === 'bool') return meta.value === 'true';
        if (meta.type === 'string') return String(meta.value);
        if (meta.value === 'null') return null;
        throw new Error(`literal ${String(meta.value)}`);
      case 'template': {
        const vals = await Promise.all(n.children.map((c) => ev(c)));
        return vals.map((v) => this.str(v, this.text(src, n))).join('');
      }
      case 'templateWrap':
        return ev(n.children[0]!);
      case 'tuple':
        return Promise.all(n.children.map((c) => ev(c)));
      case 'object': {
        const out: Record<string, Value> = {};
        for (let i = 0; i < n.children.length; i += 2) {
          const key = await this.objectKey(n.children[i]!, src, scope);
          out[key] = await ev(n.children[i + 1]!);
        }
        return out;
      }
      case 'scopeTraversal':
        return this.traversal(meta.traversal!, scope, this.text(src, n));
      case 'relativeTraversal':
        return this.walk(await ev(n.children[0]!), meta.traversal!, this.text(src, n));
      case 'index':
        return this.index(await ev(n.children[0]!), await ev(n.children[1]!), this.text(src, n));
      case 'conditional':
        return (await ev(n.children[0]!)) === true ? ev(n.children[1]!) : ev(n.children[2]!);
      case 'unaryOp': {
        const v = await ev(n.children[0]!);
        if (meta.operator === 'logicalNot') return !v;
        if (meta.operator === 'negate') return -Number(v);
        break;
      }
      case 'binaryOp':
        return this.binary(String(meta.operator), await ev(n.children[0]!), await ev(n.children[1]!));
      case 'function': {
        const args = await Promise.all(n.children.map((c) => ev(c)));
        if (meta.expandedFinalArgument) {
          const last = args.pop();
          if (!Array.isArray(last)) throw new Error(`${String(meta.name)}(…): expanded argument is not a list`);
          args.push(...last);
        }
        return this.call(String(meta.name), args, this.text(src, n));
      }
      case 'for':
        return this.forExpr(n, src, scope);
      case '':
        if (n.children.length === 1) return ev(n.children[0]!);
    }
    throw new Error(`unsupported expression (${n.type}): ${this.text(src, n)}`);
  }

  /** An object key: a bare identifier is its own name; `"k"` and `(expr)` are evaluated. */
  private async objectKey(n: Node, src: string, scope: Scope): Promise<string> {
    if (n.type === '' && n.children.length === 0) return this.text(src, n);
    if (n.type === '' && n.children.length === 1) return this.objectKey(n.children[0]!, src, scope);
    return this.str(await this.eval(n, src, scope), this.text(src, n));
  }

  private async forExpr(n: Node, src: string, scope: Scope): Promise<Value> {
    const meta = n.meta as Record<string, unknown>;
    const isMap = meta.openRangeValue === '{';
    const hasCond = typeof meta.conditionalExpression === 'string' && meta.conditionalExpression !== '';
    const [collNode, ...rest] = n.children;
    const keyNode = isMap ? rest.shift() : undefined;
    const valNode = rest.shift()!;
    const condNode = hasCond ? rest.shift() : undefined;
    const coll = await this.eval(collNode!, src, scope);
    let pairs: [Value, Value][];
    if (Array.isArray(coll)) pairs = coll.map((v, i) => [i, v]);
    else if (isObject(coll))
      pairs = Object.keys(coll)
        .sort()
        .map((k) => [k, coll[k]!]);
    else throw new Error(`for over ${JSON.stringify(coll)}: ${this.text(src, n)}`);
    const keyVar = String(meta.keyVar ?? '');
    const valVar = String(meta.valVar);
    const list: Value[] = [];
    const map: Record<string, Value> = {};
    for (const [k, v] of pairs) {
      const s: Scope = { ...scope, [valVar]: v, ...(keyVar ? { [keyVar]: k } : {}) };
      if (condNode && (await this.eval(condNode, src, s)) !== true) continue;
      const value = await this.eval(valNode, src, s);
      if (!isMap) {
        list.push(value);
        continue;
      }
      const key = this.str(await this.eval(keyNode!, src, s), this.text(src, n));
      if (meta.groupedValue) ((map[key] ??= []) as Value[]).push(value);
      else if (key in map) throw new Error(`duplicate key ${JSON.stringify(key)} in ${this.text(src, n)}`);
      else map[key] = value;
    }
    return isMap ? map : list;
  }

  private async traversal(segs: { type: string; segment: string }[], scope: Scope, text: string): Promise<Value> {
    const [root, ...rest] = segs.map(segmentKey);
    const r = String(root);
    if (r in scope) return this.walk(scope[r]!, segs.slice(1), text);
    if (r === 'var') return this.walk(await this.variable(String(rest[0])), segs.slice(2), text);
    if (r === 'local') return this.walk(await this.local(String(rest[0])), segs.slice(2), text);
    if (r === 'path') return `path.${String(rest[0])}`;
    if (r === 'data') {
      if (!this.config.data[String(rest[0])]?.[String(rest[1])]) throw new Error(`undeclared data source: ${text}`);
      return text;
    }
    if (this.config.resource[r]) {
      const all = await this.instances(r, String(rest[0]));
      const body = this.config.resource[r]![String(rest[0])]!;
      if (!('for_each' in body)) return this.walk(all[0]!, segs.slice(2), text);
      return this.walk(Object.fromEntries(all.map((i) => [i.key!, i])), segs.slice(2), text);
    }
    throw new Error(`unknown reference ${text}`);
  }

  private async walk(v: Value, segs: { type: string; segment: string }[], text: string): Promise<Value> {
    let cur = v;
    for (let i = 0; i < segs.length; i++) {
      if (cur instanceof Instance) return this.attribute(cur, segs.slice(i), text);
      cur = await this.index(cur, segmentKey(segs[i]!), text);
    }
    return cur;
  }

  private async index(coll: Value, key: Value, text: string): Promise<Value> {
    if (Array.isArray(coll) && typeof key === 'number' && key >= 0 && key < coll.length) return coll[key]!;
    if (isObject(coll) && typeof key === 'string' && key in coll) return coll[key]!;
    throw new Error(`no ${JSON.stringify(key)} in ${JSON.stringify(coll)?.slice(0, 200)} (${text})`);
  }

  /** An attribute of a resource instance: its configured value if declared, else the reference text. */
  private async attribute(inst: Instance, segs: { type: string; segment: string }[], text: string): Promise<Value> {
    let cur: unknown = this.config.resource[inst.type]![inst.name]!;
    const path: string[] = [];
    for (const seg of segs) {
      const k = segmentKey(seg);
      path.push(typeof k === 'number' ? `[${k}]` : `.${k}`);
      const next = cur && typeof cur === 'object' ? (cur as Record<string | number, unknown>)[k] : undefined;
      if (next === undefined)
        return inst.address + segs.map((s) => (s.type === 'nameTraversal' ? `.${segmentKey(s)}` : `[${JSON.stringify(segmentKey(s))}]`)).join('');
      cur = next;
    }
    if (typeof cur === 'object' && cur !== null) throw new Error(`${text}: a whole block is not a value`);
    return this.value(cur, inst.each ? { each: inst.each as unknown as Value } : {});
  }

  private binary(op: string, a: Value, b: Value): Value {
    const eq = () => JSON.stringify(a) === JSON.stringify(b);
    switch (op) {
      case 'equal':
        return eq();
      case 'notEqual':
        return !eq();
      case 'logicalAnd':
        return a === true && b === true;
      case 'logicalOr':
        return a === true || b === true;
      case 'add':
        return Number(a) + Number(b);
      case 'subtract':
        return Number(a) - Number(b);
      case 'greaterThan':
        return Number(a) > Number(b);
      case 'lessThan':
        return Number(a) < Number(b);
      case 'greaterThanOrEqual':
        return Number(a) >= Number(b);
      case 'lessThanOrEqual':
        return Number(a) <= Number(b);
    }
    throw new Error(`operator ${op}`);
  }

  private call(name: string, args: Value[], text: string): Value {
    const list = (v: Value): Value[] => {
      if (!Array.isArray(v)) throw new Error(`${name}: expected a list, got ${JSON.stringify(v)} (${text})`);
      return v;
    };
    const obj = (v: Value): Record<string, Value> => {
      if (!isObject(v)) throw new Error(`${name}: expected an object, got ${JSON.stringify(v)} (${text})`);
      return v;
    };
    const flat = (v: Value): Value[] => (Array.isArray(v) ? v.flatMap(flat) : [v]);
    switch (name) {
      case 'join':
        return list(args[1]!)
          .map((x) => this.str(x, text))
          .join(this.str(args[0]!, text));
      case 'concat':
        return args.flatMap(list);
      case 'flatten':
        return flat(list(args[0]!));
      case 'merge':
        return Object.assign({}, ...args.filter((a) => a !== null).map(obj));
      case 'keys':
        return Object.keys(obj(args[0]!)).sort();
      case 'values':
        return Object.keys(obj(args[0]!))
          .sort()
          .map((k) => obj(args[0]!)[k]!);
      case 'toset':
        return sortedUnique(list(args[0]!));
      case 'tolist':
        return list(args[0]!);
      case 'setsubtract': {
        const drop = new Set(list(args[1]!).map((x) => JSON.stringify(x)));
        return sortedUnique(list(args[0]!)).filter((x) => !drop.has(JSON.stringify(x)));
      }
      case 'setproduct':
        return list(args[0]!).flatMap((a) => list(args[1]!).map((b) => [a, b]));
      case 'contains':
        return list(args[0]!).some((x) => JSON.stringify(x) === JSON.stringify(args[1]));
      case 'tostring':
        return args[0] === null ? null : this.str(args[0]!, text);
      case 'replace':
        return this.str(args[0]!, text).split(this.str(args[1]!, text)).join(this.str(args[2]!, text));
      case 'upper':
        return this.str(args[0]!, text).toUpperCase();
      case 'lower':
        return this.str(args[0]!, text).toLowerCase();
      case 'coalesce': {
        const v = args.find((a) => a !== null && a !== '');
        if (v === undefined) throw new Error(`coalesce: no non-null, non-empty argument (${text})`);
        return v;
      }
      case 'base64encode':
        return Buffer.from(this.str(args[0]!, text)).toString('base64');
      case 'jsondecode':
        return JSON.parse(this.str(args[0]!, text)) as Value;
      case 'length':
        return Array.isArray(args[0]) ? args[0].length : isObject(args[0]!) ? Object.keys(args[0]).length : this.str(args[0]!, text).length;
    }
    throw new Error(`function ${name} is not supported by the test evaluator (${text})`);
  }
}
