"""What a screen reader and a low-vision reader need of a page, checked in the browser itself.

``problems(page)`` runs in the page and lists, in words, every place that falls short of WCAG 2.1 AA
on what we can measure without a third-party checker:

- the document names its language and has a title;
- exactly one ``h1``, and no heading level skipped on the way down;
- every image has alt text (``alt=""`` only where it is marked decorative with ``aria-hidden``);
- every link, button and form field has a name a screen reader can say;
- every piece of visible text has a contrast ratio of at least 4.5:1 against the background it is drawn
  on (3:1 for large text: 24 px, or 18.66 px bold), computed from the rendered colours.

An empty list means none was found.
"""

from __future__ import annotations

from typing import Any

_SCRIPT = r"""
() => {
  const problems = [];
  const say = (el, what) => {
    const text = (el.innerText || el.getAttribute('aria-label') || el.outerHTML).trim().replace(/\s+/g, ' ');
    problems.push(`${what}: <${el.tagName.toLowerCase()}> ${text.slice(0, 60)}`);
  };
  // rendered and not hidden (a closed <details>' content, visibility:hidden, opacity 0 are not)
  const visible = el => el.getClientRects().length > 0 &&
    el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true, contentVisibilityAuto: true});
  if (!document.documentElement.lang) problems.push('the document names no language');
  if (!document.title.trim()) problems.push('the document has no title');

  const headings = [...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].filter(visible);
  const ones = headings.filter(h => h.tagName === 'H1').length;
  if (ones !== 1) problems.push(`${ones} h1 headings, not one`);
  let level = 0;
  for (const h of headings) {
    const next = Number(h.tagName[1]);
    if (next > level + 1 && level > 0) say(h, `heading h${next} after h${level}`);
    level = next;
  }

  for (const img of document.querySelectorAll('img')) {
    const alt = img.getAttribute('alt');
    if (alt === null || (!alt.trim() && img.getAttribute('aria-hidden') !== 'true')) say(img, 'image without alt text');
  }
  const named = el => {
    if ((el.getAttribute('aria-label') || '').trim() || (el.getAttribute('title') || '').trim()) return true;
    const by = el.getAttribute('aria-labelledby');
    if (by && by.split(/\s+/).some(id => (document.getElementById(id)?.innerText || '').trim())) return true;
    if (el.labels && [...el.labels].some(label => label.innerText.trim())) return true;
    if (['INPUT', 'SELECT', 'TEXTAREA'].includes(el.tagName)) {
      return ['submit', 'button', 'reset'].includes(el.type) && (el.value || '').trim() !== '';
    }
    return (el.innerText || '').trim() !== '' || [...el.querySelectorAll('img[alt]')].some(i => i.alt.trim());
  };
  for (const el of document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea')) {
    if (visible(el) && !named(el)) say(el, 'control without a name');
  }

  const parse = text => {
    const m = text.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const [r, g, b, a = 1] = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
    return [r, g, b, a];
  };
  const over = (top, bottom) => top.slice(0, 3).map((c, i) => c * top[3] + bottom[i] * (1 - top[3])).concat(1);
  const background = el => {
    const layers = [];
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
      const colour = parse(getComputedStyle(node).backgroundColor);
      if (colour && colour[3] > 0) { layers.push(colour); if (colour[3] >= 1) break; }
    }
    let result = [255, 255, 255, 1];
    for (const layer of layers.reverse()) result = over(layer, result);
    return result;
  };
  const luminance = ([r, g, b]) => {
    const [R, G, B] = [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * R + 0.7152 * G + 0.0722 * B;
  };
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || !el || seen.has(el) || !visible(el)) continue;
    seen.add(el);
    const style = getComputedStyle(el);
    const bg = background(el);
    const fg = over(parse(style.color) || [0, 0, 0, 1], bg);
    const [hi, lo] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed) say(el, `contrast ${ratio.toFixed(2)}:1 (needs ${needed}:1)`);
  }
  return problems;
}
"""


def problems(page: Any) -> list[str]:
    """Every accessibility shortfall found on the page as it is rendered now (empty when none)."""
    found: list[str] = page.evaluate(_SCRIPT)
    return found
