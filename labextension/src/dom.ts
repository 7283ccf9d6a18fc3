/** A DOM element with a class and text. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** A styled button. */
export function button(label: string, className: string, onclick: () => void): HTMLButtonElement {
  const node = el('button', `jp-mod-styled ${className}`, label);
  node.onclick = onclick;
  return node;
}
