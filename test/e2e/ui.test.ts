/// <reference lib="dom" />
/**
 * The browser client end to end (issue 8): Debian's Chromium, driven by playwright-core, opens `/`,
 * streams its (fake) microphone — a speech recording — through a stored pipeline over the WebSocket
 * protocol, and shows the processed audio, VAD events and latency. A screenshot is kept in
 * `test/e2e/__screenshots__/` (not committed) for people to look at.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startTestServer, storePipeline } from '../support/server.js';

const CHROMIUM = '/usr/bin/chromium';
const here = dirname(fileURLToPath(import.meta.url));
const speech = resolve(here, '../fixtures/audio/speech-48k-mono.wav');
const screenshot = join(here, '__screenshots__', 'ui-stream.png');
const VIEWPORT = { width: 1280, height: 1000 };
const KEY = 'e2e-key';

const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  console.warn(`Skipping the browser test: ${CHROMIUM} is missing (apt-get install chromium; .ci/run does).`);
}

/** Pixels of a canvas that differ from its background (its top-left pixel). */
function paintedPixels(page: Page, id: string): Promise<number> {
  return page.evaluate((canvasId) => {
    const canvas = document.getElementById(canvasId) as HTMLCanvasElement;
    const { data } = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height) ?? { data: [] };
    let painted = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i] !== data[0] || data[i + 1] !== data[1] || data[i + 2] !== data[2]) painted += 1;
    }
    return painted;
  }, id);
}

const outputNumber = (page: Page, id: string) =>
  page.locator(`#${id}`).evaluate((el) => Number.parseFloat((el as HTMLOutputElement).value));

describe.skipIf(!hasChromium)('browser client in headless Chromium', () => {
  let server: Running;
  let browser: Browser;
  let base: string;
  let pipelineId: string;

  beforeAll(async () => {
    server = await startTestServer({ API_KEYS: KEY });
    base = server.base.ws.replace('ws://', 'http://');
    pipelineId = await storePipeline(server.app, {
      name: 'browser-demo',
      nodes: [
        { id: 'mono', type: 'downmix' },
        { id: 'gain', type: 'gain', params: { db: -3 } },
        { id: 'vad', type: 'vad' },
        { id: 'spectrum', type: 'spectrum', params: { fft_size: 1024, bands: 48 } },
      ],
      output: 'gain',
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        // This machine's network is closed: no background connections to Google's hosts.
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--use-fake-ui-for-media-stream',
        '--use-fake-device-for-media-stream',
        // The fake microphone plays this file, looped.
        `--use-file-for-fake-audio-capture=${speech}`,
        '--autoplay-policy=no-user-gesture-required',
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('asks for the API key, edits a pipeline, streams the microphone through it and shows audio, events and latency', async () => {
    const context = await browser.newContext({ viewport: VIEWPORT });
    await context.grantPermissions(['microphone'], { origin: base });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (m) => {
      // Refused API calls (401, 412, 422) are part of the flows below; a missing page asset is not.
      const url = m.location().url;
      if (
        m.type() === 'error' &&
        (!m.text().startsWith('Failed to load resource') || !url.includes('/v1/'))
      ) {
        problems.push(`console error: ${m.text()} (${url})`);
      }
    });

    // The API needs a key: the page says so, and lists pipelines once it has one.
    await page.goto(`${base}/`);
    await page.locator('body[data-loaded="true"]').waitFor();
    await page.locator('#status').filter({ hasText: 'needs an API key' }).waitFor();
    await page.getByLabel('API key').fill(KEY);
    await page.getByRole('button', { name: 'Use key' }).click();
    await page.getByRole('button', { name: 'browser-demo (v1)' }).click();
    // The click fetches the pipeline; until it is in, the editor still holds the new-pipeline template.
    await page.locator('#editing').filter({ hasText: 'Editing browser-demo, version 1' }).waitFor();
    await page.locator('#catalog dt', { hasText: /^vad$/ }).waitFor({ state: 'attached' });
    await page
      .locator('#catalog')
      .filter({ hasText: 'events: speech_start, speech_end' })
      .waitFor({ state: 'attached' });

    // Edit: the document is shown as JSON; an invalid one lists its problems, a valid one is a new version.
    const editor = page.getByLabel('Pipeline document');
    const original = await editor.inputValue();
    const shown = JSON.parse(original) as { name: string; nodes: Array<{ id: string }> };
    expect([shown.name, shown.nodes.map((n) => n.id)]).toEqual([
      'browser-demo',
      ['mono', 'gain', 'vad', 'spectrum'],
    ]);
    await editor.fill(original.replace('"type": "gain"', '"type": "no-such-node"'));
    await page.getByRole('button', { name: 'Save' }).click();
    await page
      .getByRole('list', { name: 'Validation errors' })
      .filter({ hasText: '/nodes/1/type' })
      .waitFor();
    await editor.fill(original.replace('-3', '-6'));
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('button', { name: 'browser-demo (v2)' }).waitFor();
    await page.locator('#editing').filter({ hasText: 'Editing browser-demo, version 2' }).waitFor();

    // Someone else saves version 3: saving the stale version 2 is refused (If-Match), reopening shows v3.
    const other = await server.app.inject({
      method: 'PUT',
      url: `/v1/pipelines/${pipelineId}`,
      headers: { authorization: `Bearer ${KEY}` },
      payload: { ...JSON.parse(original), description: 'saved elsewhere' },
    });
    expect(other.statusCode).toBe(200);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('#status').filter({ hasText: 'newer version' }).waitFor();
    await page.getByRole('button', { name: /^browser-demo/ }).click();
    await page.locator('#editing').filter({ hasText: 'Editing browser-demo, version 3' }).waitFor();

    // Stream the (fake) microphone through it.
    await page.getByLabel('Pipeline', { exact: true }).selectOption(pipelineId);
    await page.getByLabel('Microphone').check();
    await page.getByRole('button', { name: 'Start' }).click();

    // Two seconds of processed audio came back, with the VAD's events and live round-trip latency.
    await page.waitForFunction(
      () => Number((document.getElementById('msgs-answered') as HTMLOutputElement).value) >= 100,
    );
    await page.locator('#events li[data-name="speech_start"]').first().waitFor();
    await page.locator('#events li[data-name="speech_end"]').first().waitFor();
    await page.waitForFunction(() =>
      Number.isFinite(Number.parseFloat((document.getElementById('rtt-p99') as HTMLOutputElement).value)),
    );
    // The server's own percentiles, polled from GET /v1/sessions/{id} while the session runs.
    await page.waitForFunction(() =>
      Number.isFinite(Number.parseFloat((document.getElementById('srv-p99') as HTMLOutputElement).value)),
    );
    await page.locator('#out-format').filter({ hasText: 'f32le, 48000 Hz, 1 ch' }).waitFor();
    await page.locator('#spectrum-source').filter({ hasText: 'spectrum node' }).waitFor();
    const rttP50 = await outputNumber(page, 'rtt-p50');
    expect(rttP50).toBeGreaterThan(0);
    expect(await outputNumber(page, 'rtt-p99')).toBeGreaterThanOrEqual(rttP50);

    await page.getByRole('button', { name: 'Stop' }).click();
    await page.locator('body[data-stream-closed="1000"]').waitFor();
    // After `stop`, the final `stats` message's numbers.
    await page
      .locator('#status')
      .filter({ hasText: /^Session ended: \d+ messages in, \d+ out/ })
      .waitFor();
    expect(await outputNumber(page, 'srv-p99')).toBeGreaterThanOrEqual(await outputNumber(page, 'srv-p50'));

    for (const canvas of ['wave-in', 'wave-out', 'spectrum']) {
      const painted = await paintedPixels(page, canvas);
      expect(painted, `${canvas} has a drawing`).toBeGreaterThan(500);
    }

    mkdirSync(dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot });
    const png = readFileSync(screenshot);
    // PNG signature, then the IHDR chunk: width and height, big-endian, at bytes 16 and 20.
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([VIEWPORT.width, VIEWPORT.height]);

    expect(problems).toEqual([]);
    await context.close();
  }, 120_000);
});
