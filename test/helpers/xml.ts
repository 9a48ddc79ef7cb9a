// A strict reader of the XML the project writes (the JUnit report of `itsm-rules test`): an
// optional declaration, then one element tree of attributes and text, with the five named
// entities and character references. Anything else (a bare < or & in text or an attribute, a
// mismatched or unclosed tag, a repeated attribute, content after the root) throws, so a test
// that reads a report through it proves the report is well-formed, not only that it contains a
// string. No XML parser is among the dependencies, and CI systems reject what this rejects.

export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  /** The element's own text (its children's excluded), entities decoded. */
  text: string;
}

const NAME = /[A-Za-z_][\w.-]*/y;
const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function parseXml(source: string): XmlElement {
  let at = 0;
  const fail = (what: string): never => {
    const line = source.slice(0, at).split('\n').length;
    throw new Error(`not well-formed XML at line ${line}: ${what}`);
  };
  const skipSpace = () => {
    while (at < source.length && /\s/.test(source[at] as string)) at++;
  };
  const name = (): string => {
    NAME.lastIndex = at;
    const match = NAME.exec(source);
    if (!match) return fail('expected a name');
    at = NAME.lastIndex;
    return match[0];
  };
  const decode = (text: string, where: string): string => {
    if (text.includes('<')) fail(`a bare < in ${where}`);
    return text.replace(/&([^;]*);|&/g, (whole, entity: string | undefined) => {
      if (entity === undefined) return fail(`a bare & in ${where}`);
      const code = /^#x([0-9a-fA-F]+)$/.exec(entity)?.[1] ?? /^#([0-9]+)$/.exec(entity)?.[1];
      if (code !== undefined) {
        return String.fromCodePoint(Number.parseInt(code, entity.startsWith('#x') ? 16 : 10));
      }
      return ENTITIES[entity] ?? fail(`an unknown entity ${whole} in ${where}`);
    });
  };
  const element = (): XmlElement => {
    if (source[at] !== '<') fail('expected an element');
    at++;
    const node: XmlElement = { name: name(), attributes: {}, children: [], text: '' };
    for (;;) {
      skipSpace();
      if (source.startsWith('/>', at)) {
        at += 2;
        return node;
      }
      if (source[at] === '>') {
        at++;
        break;
      }
      const attribute = name();
      if (attribute in node.attributes) fail(`attribute ${attribute} given twice`);
      skipSpace();
      if (source[at] !== '=') fail(`expected = after ${attribute}`);
      at++;
      skipSpace();
      const quote = source[at];
      if (quote !== '"' && quote !== "'") return fail(`expected a quoted value of ${attribute}`);
      const end = source.indexOf(quote, at + 1);
      if (end === -1) fail(`the value of ${attribute} is not closed`);
      node.attributes[attribute] = decode(source.slice(at + 1, end), `attribute ${attribute}`);
      at = end + 1;
    }
    for (;;) {
      const next = source.indexOf('<', at);
      if (next === -1) fail(`<${node.name}> is not closed`);
      node.text += decode(source.slice(at, next), `the text of <${node.name}>`);
      at = next;
      if (source.startsWith('</', at)) {
        at += 2;
        const closing = name();
        if (closing !== node.name) fail(`</${closing}> closes <${node.name}>`);
        skipSpace();
        if (source[at] !== '>') fail(`expected > after </${closing}`);
        at++;
        return node;
      }
      node.children.push(element());
    }
  };
  if (source.startsWith('<?xml')) {
    const end = source.indexOf('?>');
    if (end === -1) fail('the declaration is not closed');
    at = end + 2;
  }
  skipSpace();
  const root = element();
  skipSpace();
  if (at !== source.length) fail('content after the root element');
  return root;
}

/** Every element named `name` under `root` (at any depth), in document order. */
export function findAll(root: XmlElement, name: string): XmlElement[] {
  return root.children.flatMap((child) => [
    ...(child.name === name ? [child] : []),
    ...findAll(child, name),
  ]);
}
