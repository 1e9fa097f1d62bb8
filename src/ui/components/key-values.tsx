/** `key=value` pairs, one a line, or a muted "none" when there are none (audit options, token metadata). */
export function KeyValues(props: { entries: [string, string][] }) {
  if (!props.entries.length) return <span class="muted">none</span>;
  return (
    <>
      {props.entries.map(([k, v]) => (
        <div key={k}>
          <code>
            {k}={v}
          </code>
        </div>
      ))}
    </>
  );
}
