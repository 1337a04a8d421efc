/**
 * Cache-friendly A/B assignment. A page under test carries
 *   <meta name="dl-experiment" content="<slug>" data-variants="a,b" data-variant="<rendered>">
 * The visitor keeps a first-party id the shop issued and signed (POST
 * /api/v1/experiments/visitors; cookie dl_vid): observations count only for such ids. Their
 * variant is
 * sha256(slug \0 id) mod 100 mapped onto the variants in order, exactly as the server's
 * rules.bucket_of. Links to pages under test get ?v=<variant>, so the HTML (and its cache key)
 * depends on the variant only. The exposure is recorded once; a conversion on
 * [data-experiment-convert] clicks (add to cart, buy).
 */
const BUCKETS = 100;

async function visitorId() {
  const found = document.cookie.split("; ").find((c) => c.startsWith("dl_vid="));
  if (found && /^[0-9a-f]{64}$/.test(found.slice(7))) return found.slice(7);
  const response = await fetch("/api/v1/experiments/visitors", {
    method: "POST", headers: { "Content-Type": "application/json" },
  }).catch(() => null);
  if (!response || !response.ok) return null; // no id, no experiment: the control stays
  const { visitor } = await response.json();
  const secure = location.protocol === "https:" ? "; secure" : "";
  document.cookie = `dl_vid=${visitor}; path=/; max-age=${365 * 86400}; samesite=lax${secure}`;
  return visitor;
}

export async function bucketOf(slug, visitor) {
  const bytes = new TextEncoder().encode(`${slug}\u0000${visitor}`);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  let n = 0n;
  for (let i = 0; i < 8; i += 1) n = (n << 8n) | BigInt(digest[i]);
  return Number(n % BigInt(BUCKETS));
}

export async function variantFor(slug, visitor, keys) {
  return keys[Math.floor((await bucketOf(slug, visitor)) * keys.length / BUCKETS)];
}

function observe(slug, visitor, variant, kind) {
  const body = JSON.stringify({ visitor, variant, kind });
  fetch(`/api/v1/experiments/${slug}/observations`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body, keepalive: true,
  }).catch(() => {});
}

async function main() {
  const meta = document.querySelector('meta[name="dl-experiment"]');
  if (!meta) return;
  const slug = meta.content;
  const keys = meta.dataset.variants.split(",");
  const visitor = await visitorId();
  if (!visitor) return;
  const mine = await variantFor(slug, visitor, keys);
  const url = new URL(location.href);
  if (meta.dataset.variant !== mine && url.searchParams.get("v") !== mine) {
    url.searchParams.set("v", mine); // a different cached copy, chosen by URL only
    location.replace(url);
    return;
  }
  const seen = `dl_seen_${slug}`;
  if (!sessionStorage.getItem(seen)) { sessionStorage.setItem(seen, "1"); observe(slug, visitor, mine, "exposure"); }
  document.querySelectorAll("[data-experiment-convert]").forEach((el) =>
    el.addEventListener("click", () => observe(slug, visitor, mine, "conversion")));
}

main();
