/** Media for browser tests, as data URLs (no network): a picture and a short tone. */

/** A small picture: a landscape with a sun, as an SVG data URL. */
export const IMAGE = `data:image/svg+xml;base64,${Buffer.from(
  '<svg xmlns="http://www.w3.org/2000/svg" width="480" height="270"><rect width="480" height="270" fill="#8ecae6"/><circle cx="380" cy="70" r="40" fill="#ffb703"/><rect y="190" width="480" height="80" fill="#2a9d8f"/><text x="24" y="250" font-size="28" fill="#fff">a dog in a field</text></svg>',
).toString('base64')}`;

/** Half a second of a 440 Hz tone: an 8 kHz, 8-bit mono WAV as a data URL. */
export function toneWav(): string {
  const rate = 8000;
  const samples = Buffer.alloc(rate / 2);
  for (let i = 0; i < samples.length; i++) samples[i] = 128 + Math.round(60 * Math.sin((2 * Math.PI * 440 * i) / rate));
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + samples.length, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate, 28);
  header.writeUInt16LE(1, 32);
  header.writeUInt16LE(8, 34);
  header.write('data', 36);
  header.writeUInt32LE(samples.length, 40);
  return `data:audio/wav;base64,${Buffer.concat([header, samples]).toString('base64')}`;
}
