/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// The overview's small charts: one bar per hour of the last 24, the rule's hits in blue with its
// failures in red on top, drawn as inline SVG by the server (no chart library, no script).

export function HourBars(props: { hits: readonly number[]; failures: readonly number[] }) {
  const width = 144;
  const height = 28;
  const slot = width / Math.max(1, props.hits.length);
  const most = Math.max(1, ...props.hits.map((hits, i) => hits + (props.failures[i] ?? 0)));
  const scale = (n: number) => (n === 0 ? 0 : Math.max(1.5, (n / most) * (height - 2)));
  const total = props.hits.reduce((a, b) => a + b, 0);
  const failed = props.failures.reduce((a, b) => a + b, 0);
  return (
    <svg
      class="spark"
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={`${total} hits and ${failed} failures in the last 24 hours, by hour`}
    >
      <line x1="0" y1={height - 0.5} x2={width} y2={height - 0.5} />
      {props.hits.map((hits, i) => {
        const fails = props.failures[i] ?? 0;
        const hitHeight = scale(hits);
        const failHeight = scale(fails);
        const x = (i * slot + 0.5).toFixed(1);
        const w = Math.max(1, slot - 1).toFixed(1);
        return (
          <g>
            {hits > 0 && (
              <rect
                class="hit"
                x={x}
                y={(height - 1 - hitHeight).toFixed(1)}
                width={w}
                height={hitHeight.toFixed(1)}
              />
            )}
            {fails > 0 && (
              <rect
                class="fail"
                x={x}
                y={(height - 1 - hitHeight - failHeight).toFixed(1)}
                width={w}
                height={failHeight.toFixed(1)}
              />
            )}
          </g>
        );
      })}
    </svg>
  );
}
