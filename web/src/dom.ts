// A tiny element builder (no framework): attributes, listeners and children in one call. It never
// writes a `style` attribute (the Content-Security-Policy forbids inline styles); code that needs a
// computed size sets el.style.* instead, which the policy allows.

type Child = Node | string | number | null | undefined | false;
type AttrValue = string | number | boolean | null | undefined | ((event: never) => void);

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, AttrValue> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === 'function' && key.startsWith('on')) el.addEventListener(key.slice(2), value as EventListener);
    else if (typeof value === 'function') throw new Error(`listener ${key} must be named on<event>`);
    else if (key === 'class') el.className = String(value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, ...children);
  return el;
}

export function append(el: Element, ...children: Child[]): void {
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
}

export const byId = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from index.html`);
  return el as T;
};

export function clear(el: Element): void {
  el.replaceChildren();
}
