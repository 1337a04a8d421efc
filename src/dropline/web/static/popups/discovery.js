/**
 * Private, on-device discovery: search and "similar items" over the compact product index
 * (GET /api/v1/catalog/index.json), run entirely in the browser. What the shopper types, and
 * where they are, never leave the device: the only request is the index download, the same
 * for everyone (cacheable at the edge), kept in the Cache API so it also works offline.
 *
 *   import { loadIndex, search, similar, nearby } from "/static/popups/discovery.js";
 *   const index = await loadIndex();            // cache-first, revalidated in the background
 *   search(index.products, "fig cand");         // tokenised prefix match, ranked
 *   similar(index.products, product, 4);        // cosine over family + tag vectors
 *   nearby(index, lat, lon, 5);                 // stores within 5 km, nearest first
 */

const INDEX_URL = "/api/v1/catalog/index.json";
const CACHE = "dropline-discovery-v1";

export function tokenize(text) {
  return String(text || "").toLowerCase().normalize("NFKD").replace(/[\u0300-\u036f]/g, "")
    .split(/[^a-z0-9]+/).filter(Boolean);
}

function fieldsOf(item) {
  if (!item._fields) {
    item._fields = [
      [tokenize(item.name), 3],
      [tokenize((item.family || "").replace(/-/g, " ")), 2],
      [(item.tags || []).flatMap(tokenize), 1],
      [tokenize(item.sku || ""), 1],
    ];
  }
  return item._fields;
}

/** Every query token must be a prefix of some token of the item; the score adds, per query
 * token, the weight of the best field it matched (name 3, family 2, tags 1), +0.5 when the
 * match is a whole word. Ties go to the shorter name, then alphabetical. */
export function search(items, query, { limit = 20 } = {}) {
  const terms = tokenize(query);
  if (!terms.length) return [];
  const hits = [];
  for (const item of items) {
    let score = 0;
    let all = true;
    for (const term of terms) {
      let best = 0;
      for (const [tokens, weight] of fieldsOf(item)) {
        for (const token of tokens) {
          if (token.startsWith(term)) best = Math.max(best, weight + (token === term ? 0.5 : 0));
        }
      }
      if (!best) { all = false; break; }
      score += best;
    }
    if (all) hits.push({ item, score });
  }
  hits.sort((a, b) => b.score - a.score || a.item.name.length - b.item.name.length ||
    a.item.name.localeCompare(b.item.name));
  return hits.slice(0, limit).map((h) => h.item);
}

function vectorOf(item) {
  const v = new Map();
  v.set(`family:${item.family}`, 2);
  for (const tag of item.tags || []) v.set(`tag:${tag}`, (v.get(`tag:${tag}`) || 0) + 1);
  return v;
}

export function cosine(a, b) {
  let dot = 0, na = 0, nb = 0;
  for (const [k, x] of a) { na += x * x; if (b.has(k)) dot += x * b.get(k); }
  for (const [, y] of b) nb += y * y;
  return na && nb ? dot / Math.sqrt(na * nb) : 0;
}

export function similar(items, target, k = 4) {
  const tv = vectorOf(target);
  return items.filter((i) => i.id !== target.id)
    .map((i) => ({ i, s: cosine(tv, vectorOf(i)) }))
    .filter((x) => x.s > 0)
    .sort((a, b) => b.s - a.s || a.i.name.localeCompare(b.i.name))
    .slice(0, k).map((x) => x.i);
}

function km(lat1, lon1, lat2, lon2) {
  const r = (d) => (d * Math.PI) / 180;
  const a = Math.sin(r(lat2 - lat1) / 2) ** 2 +
    Math.cos(r(lat1)) * Math.cos(r(lat2)) * Math.sin(r(lon2 - lon1) / 2) ** 2;
  return 12742 * Math.asin(Math.sqrt(a));
}

/** Stores within `radiusKm` of a position known only to this page, nearest first. */
export function nearby(index, lat, lon, radiusKm = 5) {
  return index.stores.filter((s) => s.lat != null && s.lon != null)
    .map((s) => ({ ...s, km: km(lat, lon, s.lat, s.lon) }))
    .filter((s) => s.km <= radiusKm).sort((a, b) => a.km - b.km);
}

export function inStockAt(product, storeCodes) {
  return storeCodes.some((code) => (product.stock || {})[code] > 0);
}

/** Cache-first: a stored copy answers at once (and offline); a background fetch refreshes
 * it. Without a stored copy the index is fetched (and stored). */
export async function loadIndex({ url = INDEX_URL, onUpdate } = {}) {
  const store = typeof caches !== "undefined" ? await caches.open(CACHE) : null;
  const cached = store ? await store.match(url) : null;
  const refresh = fetch(url, { credentials: "omit" }).then(async (response) => {
    if (!response.ok) throw new Error(`index: HTTP ${response.status}`);
    if (store) await store.put(url, response.clone());
    return response.json();
  });
  if (cached) {
    refresh.then((fresh) => onUpdate && onUpdate(fresh)).catch(() => {});
    return cached.json();
  }
  return refresh;
}
