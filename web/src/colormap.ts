// Viridis (matplotlib's default map), 9 stops linearly interpolated: perceptually uniform and its
// lightness rises monotonically, so "brighter" always means "higher density", also in grey print.
const STOPS = [
  [68, 1, 84],
  [71, 44, 122],
  [59, 81, 139],
  [44, 113, 142],
  [33, 144, 141],
  [39, 173, 129],
  [92, 200, 99],
  [170, 220, 50],
  [253, 231, 37],
];

/** t in [0, 1] (clamped) → [r, g, b]. */
export function viridis(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const a = STOPS[i];
  const b = STOPS[i + 1];
  return [0, 1, 2].map((k) => Math.round(a[k] + (b[k] - a[k]) * f)) as [number, number, number];
}

/** A horizontal colour bar for the legend. */
export function drawColourBar(canvas: HTMLCanvasElement): void {
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(canvas.width, canvas.height);
  for (let x = 0; x < canvas.width; x++) {
    const [r, g, b] = viridis(x / (canvas.width - 1));
    for (let y = 0; y < canvas.height; y++) img.data.set([r, g, b, 255], (y * canvas.width + x) * 4);
  }
  ctx.putImageData(img, 0, 0);
}
