// ServiceNow encoded queries (`sysparm_query`): a parser to an AST with errors that name the
// term and say what to write instead, and an evaluator over string records.
//
// Grammar: conditions `field OP value` joined by `^` (and); a condition written `^OR...` is
// or'ed with the one before it (OR binds tighter than AND, as on an instance); `^NQ` starts a
// new query or'ed with the others; `ORDERBYfield` / `ORDERBYDESCfield` terms sort the result;
// `^EQ` ends the query. A `^` inside a value is written `^^`. Values are compared as strings,
// numerically when both sides are numbers; date-times compare as `YYYY-MM-DD HH:mm:ss` text,
// and `javascript:gs.dateGenerate('2024-05-01','09:30:00')` is read as that date-time.

export const OPERATORS = [
  '=',
  '!=',
  '<',
  '<=',
  '>',
  '>=',
  'IN',
  'NOT IN',
  'LIKE',
  'NOT LIKE',
  'STARTSWITH',
  'ENDSWITH',
  'ISEMPTY',
  'ISNOTEMPTY',
  'EMPTYSTRING',
  'ANYTHING',
  'BETWEEN',
  'SAMEAS',
  'NSAMEAS',
] as const;
export type Operator = (typeof OPERATORS)[number];

/** Operators that take no value. */
const UNARY = new Set<Operator>(['ISEMPTY', 'ISNOTEMPTY', 'EMPTYSTRING', 'ANYTHING']);

// Longest first, so that `<=` is not read as `<` followed by a value `=...`; word operators
// follow the field with no space (`short_descriptionLIKEmail`).
const MATCH_ORDER = [...OPERATORS].sort((a, b) => b.length - a.length);

export interface Condition {
  field: string;
  operator: Operator;
  value: string;
}

/** Conditions or'ed together (a condition and the `^OR` conditions after it). */
export type Disjunction = Condition[];
/** Disjunctions and'ed together: one query between `^NQ`s. */
export type Conjunction = Disjunction[];

export interface OrderTerm {
  field: string;
  descending: boolean;
}

export interface EncodedQuery {
  /** Or'ed together; empty when the query has no condition (everything matches). */
  queries: Conjunction[];
  orderBy: OrderTerm[];
}

export class EncodedQueryError extends Error {
  readonly code = 'SN_QUERY_INVALID';
  constructor(
    readonly term: string,
    message: string,
  ) {
    super(message);
    this.name = 'EncodedQueryError';
  }
}

const FIELD = /^[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?/;
const DATE_GENERATE = /^javascript:\s*gs\.dateGenerate\(\s*'([^']*)'\s*,\s*'([^']*)'\s*\)\s*$/;

/** Splits on single `^`, keeping `^^` as a literal `^` inside a term. */
function splitTerms(query: string): string[] {
  const terms: string[] = [];
  let current = '';
  for (let i = 0; i < query.length; i++) {
    const ch = query[i];
    if (ch === '^') {
      if (query[i + 1] === '^') {
        current += '^';
        i++;
        continue;
      }
      terms.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  terms.push(current);
  return terms;
}

function parseValue(term: string, raw: string): string {
  if (!raw.startsWith('javascript:')) return raw;
  const date = DATE_GENERATE.exec(raw);
  if (date) return `${date[1]} ${date[2]}`.trim();
  throw new EncodedQueryError(
    term,
    `"${term}": scripted values are not run here; only javascript:gs.dateGenerate('YYYY-MM-DD','HH:mm:ss') is understood — give the value itself, e.g. sys_updated_on>=2024-05-01 00:00:00`,
  );
}

function parseCondition(term: string): Condition {
  const field = FIELD.exec(term)?.[0];
  if (!field) {
    throw new EncodedQueryError(
      term,
      `"${term}" does not start with a field name (lower-case letters, digits, _ and at most one dot), e.g. active=true`,
    );
  }
  const rest = term.slice(field.length);
  const operator = MATCH_ORDER.find((op) => rest.startsWith(op));
  if (!operator) {
    throw new EncodedQueryError(
      term,
      `"${term}": no operator after the field ${field}; use one of ${OPERATORS.join(', ')}`,
    );
  }
  const value = rest.slice(operator.length);
  if (UNARY.has(operator) && value !== '') {
    throw new EncodedQueryError(term, `"${term}": ${operator} takes no value`);
  }
  if (operator === 'BETWEEN' && value.split('@').length !== 2) {
    throw new EncodedQueryError(
      term,
      `"${term}": BETWEEN takes two values joined by @, e.g. priorityBETWEEN1@3`,
    );
  }
  if ((operator === 'SAMEAS' || operator === 'NSAMEAS') && !FIELD.test(value)) {
    throw new EncodedQueryError(
      term,
      `"${term}": ${operator} compares with another field; give its name`,
    );
  }
  return { field, operator, value: parseValue(term, value) };
}

export function parseEncodedQuery(text: string): EncodedQuery {
  const queries: Conjunction[] = [];
  const orderBy: OrderTerm[] = [];
  let current: Conjunction = [];
  const close = () => {
    if (current.length > 0) queries.push(current);
    current = [];
  };
  for (const term of splitTerms(text)) {
    if (term === '' || term === 'EQ') continue;
    if (term.startsWith('ORDERBYDESC') || term.startsWith('ORDERBY')) {
      const descending = term.startsWith('ORDERBYDESC');
      const field = term.slice(descending ? 'ORDERBYDESC'.length : 'ORDERBY'.length);
      if (!FIELD.test(field) || FIELD.exec(field)?.[0] !== field) {
        throw new EncodedQueryError(
          term,
          `"${term}": ORDERBY and ORDERBYDESC are followed by a field name, e.g. ORDERBYsys_created_on`,
        );
      }
      orderBy.push({ field, descending });
    } else if (term.startsWith('NQ')) {
      close();
      if (term.length > 2) current.push([parseCondition(term.slice(2))]);
    } else if (term.startsWith('OR')) {
      const condition = parseCondition(term.slice(2));
      const last = current.at(-1);
      if (!last) {
        throw new EncodedQueryError(term, `"${term}": an OR condition needs a condition before it`);
      }
      last.push(condition);
    } else {
      current.push([parseCondition(term)]);
    }
  }
  close();
  return { queries, orderBy };
}

/** Every field a query reads (conditions, SAMEAS targets, ordering), for validation. */
export function queryFields(query: EncodedQuery): string[] {
  const fields = new Set<string>();
  for (const conjunction of query.queries) {
    for (const disjunction of conjunction) {
      for (const c of disjunction) {
        fields.add(c.field);
        if (c.operator === 'SAMEAS' || c.operator === 'NSAMEAS') fields.add(c.value);
      }
    }
  }
  for (const term of query.orderBy) fields.add(term.field);
  return [...fields];
}

const NUMBER = /^-?\d+(?:\.\d+)?$/;

/** Numbers numerically, everything else (date-times included) as text. */
export function compareValues(a: string, b: string): number {
  if (NUMBER.test(a) && NUMBER.test(b)) return Number(a) - Number(b);
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Reads a field of the record being tested; missing fields read as "". */
export type FieldReader = (field: string) => string;

function test(c: Condition, read: FieldReader): boolean {
  const actual = read(c.field);
  const lower = actual.toLowerCase();
  const wanted = c.value.toLowerCase();
  switch (c.operator) {
    case '=':
      return actual === c.value;
    case '!=':
      return actual !== c.value;
    case '<':
      return actual !== '' && compareValues(actual, c.value) < 0;
    case '<=':
      return actual !== '' && compareValues(actual, c.value) <= 0;
    case '>':
      return actual !== '' && compareValues(actual, c.value) > 0;
    case '>=':
      return actual !== '' && compareValues(actual, c.value) >= 0;
    case 'IN':
      return c.value.split(',').includes(actual);
    case 'NOT IN':
      return !c.value.split(',').includes(actual);
    case 'LIKE':
      return lower.includes(wanted);
    case 'NOT LIKE':
      return !lower.includes(wanted);
    case 'STARTSWITH':
      return lower.startsWith(wanted);
    case 'ENDSWITH':
      return lower.endsWith(wanted);
    case 'ISEMPTY':
    case 'EMPTYSTRING':
      return actual === '';
    case 'ISNOTEMPTY':
      return actual !== '';
    case 'ANYTHING':
      return true;
    case 'BETWEEN': {
      const [low = '', high = ''] = c.value.split('@');
      return actual !== '' && compareValues(actual, low) >= 0 && compareValues(actual, high) <= 0;
    }
    case 'SAMEAS':
      return actual === read(c.value);
    case 'NSAMEAS':
      return actual !== read(c.value);
  }
}

export function matchesQuery(query: EncodedQuery, read: FieldReader): boolean {
  if (query.queries.length === 0) return true;
  return query.queries.some((conjunction) =>
    conjunction.every((disjunction) => disjunction.some((c) => test(c, read))),
  );
}

/** Sorts by the ORDERBY terms (stable: equal records keep their order). */
export function orderRecords<T>(
  records: readonly T[],
  orderBy: readonly OrderTerm[],
  read: (record: T, field: string) => string,
): T[] {
  if (orderBy.length === 0) return [...records];
  return [...records].sort((a, b) => {
    for (const term of orderBy) {
      const order = compareValues(read(a, term.field), read(b, term.field));
      if (order !== 0) return term.descending ? -order : order;
    }
    return 0;
  });
}
