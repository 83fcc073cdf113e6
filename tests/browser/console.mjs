// The admin console's scenario in headless Chromium (run by scripts/browser.sh, which starts
// a private database, api and worker and passes their addresses in the environment). Every
// step asserts on what the page, the api or the database shows; a failure exits non-zero.
// Screenshots of each page go to docs/console/.
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { openSync, writeFileSync, mkdirSync } from "node:fs";

const BASE = process.env.EYE_BASE;
const SHOTS = process.env.EYE_SHOTS || "docs/console";
const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run scripts/browser.sh)`);
  return v;
};
const ADMIN_TOKEN = env("EYE_ADMIN_TOKEN");
mkdirSync(SHOTS, { recursive: true });

function check(condition, what) {
  if (!condition) throw new Error(`FAILED: ${what}`);
  console.log(`ok - ${what}`);
}

async function until(what, fn, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`FAILED: timed out waiting for ${what} (last: ${last})`);
}

// Every 202 from POST /events, for the Overview's accepted count (how many posts get through
// depends on timing: the token's first acceptance, the revocation's).
let accepted202 = 0;

async function postEvent(token, data, name = "pageview") {
  const res = await fetch(`${BASE}/events`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({
      session_id: "e2085be5-9137-4e4e-80b5-f1ffddc25423",
      category: "page interaction",
      name,
      data,
      timestamp: new Date().toISOString(),
    }),
  });
  if (res.status === 202) accepted202 += 1;
  return { status: res.status, body: await res.json().catch(() => ({})) };
}

async function apiStatus(id) {
  const res = await fetch(`${BASE}/events/${id}/status`, {
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  return (await res.json()).status;
}

const shot = (page, name) => page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });

// A fresh profile (--user-data-dir), which playwright takes as the persistent context's.
const context = await chromium.launchPersistentContext(env("EYE_CHROMIUM_PROFILE"), {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
let failed = false;
try {
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(15000);

  // Every page refuses without a session: to the sign-in form.
  await page.goto(`${BASE}/admin/events`);
  check(page.url().endsWith("/admin/login"), "without a session, a page sends to sign in");
  await shot(page, "login");

  // A wrong token is refused.
  await page.fill("#token", "not-a-token");
  await page.click("#sign-in-token");
  check((await page.textContent("#error")).includes("Not signed in"), "a wrong token is refused");

  // Sign in with the admin token.
  await page.fill("#token", ADMIN_TOKEN);
  await page.click("#sign-in-token");
  await page.waitForURL(`${BASE}/admin`);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "eye_session");
  check(session && session.httpOnly && session.sameSite === "Strict" && session.expires > 0,
    "the session cookie is HttpOnly, SameSite=Strict, expiring");
  check(!(await page.content()).includes(ADMIN_TOKEN), "the admin token is not in the page");

  // Create an application and issue a token for it.
  await page.click("text=Applications & tokens");
  await page.fill("#new-app-id", "shop");
  await page.click("#create-app button");
  check((await page.textContent("#flash")).includes("Application shop created"), "an application is created");
  await page.click("#app-shop form.issue button");
  const token = (await page.inputValue("#issued-token")).trim();
  check(token.split(".").length === 3, "a token is issued and shown once");
  await page.goto(`${BASE}/admin/apps`);
  check(!(await page.content()).includes(token), "the token is not shown again");

  // Post an event with it through the api (the api learns of the new app within a second).
  const first = await until("the api to accept the new token", async () => {
    const r = await postEvent(token, { host: "shop.example", path: "/cart" });
    return r.status === 202 ? r.body.id : null;
  });
  check(Boolean(first), `an event is accepted (202, ${first})`);

  // See it in Events, then its detail and its session's timeline.
  await until("the event in Events", async () => {
    await page.goto(`${BASE}/admin/events?app=shop`);
    return (await page.locator(`a.event-link:has-text("${first}")`).count()) === 1;
  });
  check(true, "the event is listed in Events");
  await shot(page, "events");
  await page.click(`a.event-link:has-text("${first}")`);
  check((await page.textContent("#state")).trim() === "stored", "its detail says stored");
  check((await page.textContent("#data")).includes('"path": "/cart"'), "its JSON is pretty-printed");
  await shot(page, "event");
  await page.click(`a[href^="/admin/sessions/"]`);
  await page.waitForSelector("#timeline");
  check((await page.locator("#timeline li").count()) === 1, "its session's timeline lists it");
  await shot(page, "timeline");

  // A pageview without `path` breaks the pageview_schema rule: refused, a dead letter.
  const refused = (await postEvent(token, { host: "shop.example" })).body.id;
  check(Boolean(refused), `a pageview without path is accepted at the edge (${refused})`);
  await until("the dead letter", async () => {
    await page.goto(`${BASE}/admin/dead-letters`);
    return (await page.locator("#groups td:has-text('pageview_schema')").count()) > 0;
  });
  check(true, "the refusal is grouped under pageview_schema in Dead letters");
  check((await apiStatus(refused)) === "rejected", "the api says rejected");
  await shot(page, "dead_letters");
  await page.click("#groups tr:has-text('pageview_schema') a.group-link");
  const box = page.locator(`input[name=event][value="shop:${refused}"]`);
  check((await box.count()) === 1, "the dead letter is listed with a checkbox");
  await shot(page, "dead_letter_list");

  // Change the rule (pageview_schema off: the worker restarts with the lenient rules), then
  // replay the selection and watch it become stored.
  process.kill(Number(env("EYE_WORKER_PID")), "SIGTERM");
  await new Promise((r) => setTimeout(r, 1000));
  const log = openSync(env("EYE_WORKER_LOG"), "a");
  const worker = spawn(env("EYE_WORKER_BIN"), [], {
    env: { ...process.env, EYE_RULES_FILE: env("EYE_LENIENT_RULES") },
    stdio: ["ignore", log, log],
  });
  writeFileSync(env("EYE_WORKER_PIDFILE"), String(worker.pid));
  await new Promise((r) => setTimeout(r, 1500));
  await box.check();
  await page.click("#replay-selected");
  check((await page.textContent("#report")).includes("Re-published: 1"), "the replay re-published 1 event");
  await page.waitForSelector("#statuses .status-stored", { timeout: 20000 });
  check(true, "the replayed event's state turns to stored on the page");
  check((await apiStatus(refused)) === "stored", "the api says stored");
  await shot(page, "replayed");
  await page.goto(`${BASE}/admin/dead-letters/list?kind=invalid&validator=pageview_schema`);
  check((await page.textContent(`#dead-letters tr:has-text("${refused}") .status-stored`)) === "stored",
    "the group's list says the replayed event is now stored");

  // The token's last use is recorded (off the request path, flushed within a second or two).
  const lastUsed = await until("the token's last use on Applications", async () => {
    await page.goto(`${BASE}/admin/apps`);
    const t = (await page.textContent("#app-shop table.tokens .last-used")).trim();
    return t !== "never" ? t : null;
  });
  check(lastUsed.includes("UTC"), `the token's last use is shown (${lastUsed})`);

  // Revoke the token: the next post is refused.
  await page.goto(`${BASE}/admin/apps`);
  await page.click("#app-shop table.tokens button:has-text('Revoke')");
  check((await page.textContent("#flash")).includes("revoked"), "the token is revoked");
  const after = await until("the api to refuse the revoked token", async () => {
    const r = await postEvent(token, { host: "shop.example", path: "/" });
    return r.status === 401 ? r : null;
  });
  check(JSON.stringify(after.body).includes("revoked"), "the next post is refused: 401 revoked");

  // Disable, then enable the application again.
  await page.click("#app-shop button:has-text('Disable')");
  check((await page.textContent("#app-shop h2")).includes("disabled"), "the application is disabled");
  await page.click("#app-shop button:has-text('Enable')");
  check((await page.textContent("#app-shop h2")).includes("enabled"), "the application is enabled again");
  await shot(page, "apps");

  // CSRF: a form with a wrong token is refused, and nothing is created.
  await page.fill("#new-app-id", "forged");
  await page.evaluate(() => { document.querySelector("#create-app input[name=csrf]").value = "forged"; });
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/admin/apps/create")),
    page.click("#create-app button"),
  ]);
  check(response.status() === 403, "a form with a wrong CSRF token is refused (403)");
  check((await page.textContent("#error")).includes("CSRF"), "the page says why");
  await shot(page, "csrf_refused");
  await page.goto(`${BASE}/admin/apps`);
  check((await page.locator("#app-forged").count()) === 0, "the forged form created nothing");

  // Overview and provider plans.
  await page.goto(`${BASE}/admin`);
  check(Number(await page.textContent("#stored-hour")) >= 2, "the Overview counts the stored events");
  // The api flushes its counts every refresh interval: look again until they are in.
  const acceptedHour = await until(`the Overview to count the ${accepted202} accepted posts`, async () => {
    await page.goto(`${BASE}/admin`);
    const n = Number(await page.textContent("#accepted-hour"));
    return n >= accepted202 ? String(n) : null;
  });
  check(accepted202 >= 2 && Number(acceptedHour) >= accepted202,
    `the Overview counts the accepted events (the api's own counts: ${acceptedHour}, ${accepted202} posts answered 202)`);
  check((await page.locator("svg.chart polyline").count()) === 3, "the chart is drawn (SVG: accepted, stored, refused)");
  check((await page.locator("#queue-depth").count()) === 1, "the queue depth is read from the broker");
  await shot(page, "overview");
  await page.goto(`${BASE}/admin/plans`);
  check((await page.locator("#plans").count()) === 1, "the provider plans page renders");
  // The fetcher (adapter json, pulling the fixtures every 2 s) records each cycle.
  await until("a recorded fetch cycle", async () => {
    await page.goto(`${BASE}/admin/plans`);
    return (await page.locator("#fetch-history .cycles tbody tr.outcome-ok").count()) >= 1;
  });
  const history = await page.textContent("#fetch-history");
  check(history.includes("json") && history.includes("circuit closed"), "the fetch history shows the provider and its circuit");
  await shot(page, "plans");

  // JSON records: the resources with their counts, then one resource's records.
  await until("the imported JSON records", async () => {
    await page.goto(`${BASE}/admin/records`);
    return (await page.locator("#resources tbody tr").count()) === 3;
  });
  await page.click("#resources a:text('posts')");
  await page.waitForURL(/resource=posts/);
  check((await page.locator("#records tbody tr").count()) === 5, "the posts' records are listed");
  check((await page.textContent("#records")).includes("post 1 title"), "with their content");
  await shot(page, "records");
  // Erasures: a dry run, a wrong count refused, the right count confirms, progress to done.
  await page.goto(`${BASE}/admin/erasures`);
  await page.fill("#erase-app", "shop");
  await page.fill("#erase-session", "e2085be5-9137-4e4e-80b5-f1ffddc25423");
  await page.fill("#erase-reason", "the user asked to be forgotten");
  await page.click("#create-erasure button");
  const matched = Number(await page.textContent("#dry-run-events"));
  check(matched >= 2, `the dry run counts the session's stored events (${matched})`);
  await shot(page, "erasures");
  await page.fill("#confirm-count", String(matched + 1));
  await page.click("#confirm-erasure button");
  check((await page.textContent("#error")).includes("count"), "a wrong count typed back does not confirm");
  await page.goBack();
  await page.fill("#confirm-count", String(matched));
  await page.click("#confirm-erasure button");
  await until("the erasure to be done", async () => {
    await page.goto(page.url());
    return (await page.textContent("#erasure-status")).trim() === "done";
  }, 30000);
  check((await page.textContent("#erasure-deleted")).startsWith(`${matched} events`), "the erasure deleted what the dry run counted");
  await shot(page, "erasure");
  await page.goto(`${BASE}/admin/events?app=shop`);
  check((await page.locator(`a.event-link:has-text("${first}")`).count()) === 0, "the erased session's events are gone from Events");
  // Imports: a CSV with one bad row, its live progress (SSE) until done, its refused row.
  const sid = "e2085be5-9137-4e4e-80b5-f1ffddc25423";
  let csv = "sid,category,name,ts,sku\n";
  for (let i = 0; i < 2000; i++) csv += `${sid},shop,order,${i === 7 ? "never" : "2024-01-01 00:00:00"},SKU-${i}\n`;
  const imported = await fetch(`${BASE}/imports?session_id=sid&timestamp=ts&dedup_key=sku`, {
    method: "POST",
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "text/csv" },
    body: csv,
  });
  check(imported.status === 202, "POST /imports answers 202");
  const importId = (await imported.json()).id;
  await page.goto(`${BASE}/admin/imports`);
  check((await page.locator(`#imports a[href="/admin/imports/${importId}"]`).count()) === 1, "the Imports page lists the import");
  await shot(page, "imports");
  await page.goto(`${BASE}/admin/imports/${importId}`);
  await until("the import's live progress to reach done", async () =>
    (await page.textContent("#import-state")).trim() === "done", 60000);
  check((await page.textContent("#import-stored")).trim() === "1999", "the progress shows the stored rows");
  await page.reload();
  check((await page.locator("#refused tbody tr").count()) === 1, "the refused row is listed");
  check((await page.textContent("#refused")).includes("ts"), "with the column to blame");
  await shot(page, "import");

  // Webhooks: subscribe the script's local receiver (allow-listed), send a test, see the
  // attempt with its 2xx; the secret is shown once only.
  await page.goto(`${BASE}/admin/webhooks`);
  await page.selectOption("#create-webhook select[name=app]", "shop");
  await page.fill("#new-webhook-url", env("EYE_HOOK_URL"));
  await page.fill("#create-webhook input[name=description]", "the browser test's receiver");
  await page.fill("#create-webhook textarea[name=filters]", '[{"category": "page interaction"}]');
  await page.click("#create-webhook button");
  const secret = (await page.inputValue("#secret-value")).trim();
  check(secret.startsWith("whsec_"), "a new subscription's signing secret is shown once");
  await page.click("#test-webhook button");
  const tested = Number((await page.textContent("#tested-status")).trim());
  check(tested >= 200 && tested < 300, `Send test answers the receiver's status (${tested})`);
  check((await page.textContent("#tested")).includes("received"), "and the start of its answer");
  check((await page.locator("#attempts td.attempt-status", { hasText: String(tested) }).count()) === 1,
    "the attempt is listed with its 2xx status");
  await shot(page, "webhook");
  await page.goto(`${BASE}/admin/webhooks`);
  check((await page.locator("#webhooks tbody tr").count()) === 1, "the Webhooks page lists the subscription");
  check(!(await page.content()).includes(secret), "the secret is never shown again");
  await shot(page, "webhooks");

  // Exports: queue one to a folder from the form; the script's eye-exporter runs it; its run
  // and its files on the Exports pages.
  await page.goto(`${BASE}/admin/exports`);
  await page.fill("#new-export-name", "browser-events");
  await page.fill("#new-export-destination", env("EYE_EXPORT_DIR"));
  await page.fill("#create-export input[name=chunk_size]", "500");
  await page.click("#create-export button");
  await until("the export to succeed", async () => {
    await page.reload();
    return (await page.textContent("#export-state")).trim() === "succeeded";
  }, 30000);
  const files = await page.locator("#files tbody tr").count();
  check(files >= 1, `the export's files are listed (${files})`);
  check((await page.textContent("#files")).includes("/browser-events/"), "with their keys");
  check((await page.textContent("#export-descriptor")).endsWith("descriptor.json"), "and the descriptor, written last");
  await shot(page, "export");
  await page.goto(`${BASE}/admin/exports`);
  check((await page.locator("#exports td.state-succeeded").count()) === 1, "the Exports page lists the run as succeeded");
  await shot(page, "exports");

  // Sign out: the session is over.
  await page.click("header .signout button");
  await page.waitForURL(`${BASE}/admin/login`);
  await page.goto(`${BASE}/admin`);
  check(page.url().endsWith("/admin/login"), "after sign-out, pages refuse");

  // A console user signs in with a password.
  await page.fill("#username", env("EYE_CONSOLE_USER"));
  await page.fill("#password", "wrong password!");
  await page.click("#sign-in-password");
  check((await page.textContent("#error")).includes("Not signed in"), "a wrong password is refused");
  await page.fill("#username", env("EYE_CONSOLE_USER"));
  await page.fill("#password", env("EYE_CONSOLE_PASSWORD"));
  await page.click("#sign-in-password");
  await page.waitForURL(`${BASE}/admin`);
  check((await page.textContent("header .who")).includes(env("EYE_CONSOLE_USER")), "a console user signs in with a password");
  await page.click("header .signout button");
  await page.waitForURL(`${BASE}/admin/login`);
  check(true, "signed out");
} catch (e) {
  failed = true;
  console.error(e.message || e);
} finally {
  await context.close();
}
process.exit(failed ? 1 : 0);
