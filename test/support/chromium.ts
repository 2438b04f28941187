/**
 * Chromium for browser tests: Debian's build (HITLOOP_CHROMIUM_PATH, checked by scripts/test),
 * headless, with the background networking this machine's closed network refuses turned off.
 */
import { type Browser, chromium } from 'playwright-core';

export function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.HITLOOP_CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...extraArgs],
  });
}
