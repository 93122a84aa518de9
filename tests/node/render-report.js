// Opens an `rgrpc bench --format html` report in headless Chromium (Debian's, driven by
// playwright-core) and prints what was drawn, as JSON: the histogram's bars with a visible
// height, and the length on screen of each line of the plots over time.
// Usage: node render-report.js REPORT.html [SCREENSHOT.png]
const { chromium } = require('playwright-core');
const path = require('path');

async function main() {
  const [file, screenshot] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    // playwright gives each launch a fresh, empty profile of its own.
  });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
    await page.goto('file://' + path.resolve(file));
    const drawn = await page.evaluate(() => {
      const bars = [...document.querySelectorAll('#histogram rect.bar')];
      const lines = {};
      for (const chart of ['latency-over-time', 'calls-over-time']) {
        for (const p of document.querySelectorAll(`#${chart} path`)) {
          const box = p.getBoundingClientRect();
          const key = `${chart}.${p.getAttribute('class')}`;
          lines[key] = Math.max(lines[key] || 0, p.getTotalLength(), box.width);
        }
      }
      const report = JSON.parse(document.getElementById('report').textContent);
      return {
        title: document.title,
        bars: bars.length,
        visibleBars: bars.filter((b) => b.getBoundingClientRect().height >= 1).length,
        barCounts: bars.map((b) => Number(b.querySelector('title').textContent.split(': ')[1])),
        lines,
        count: report.count,
      };
    });
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    drawn.errors = errors;
    console.log(JSON.stringify(drawn));
  } finally {
    await browser.close();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
