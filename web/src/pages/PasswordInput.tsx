import { useId, useState } from 'react';

/** A password field with a show/hide toggle and the policy as its description. */
export function PasswordInput(props: {
  label: string;
  value: string;
  onChange: (v: string) => void;
  autoComplete: string;
  name: string;
  hint?: boolean;
}) {
  const [shown, setShown] = useState(false);
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      <div className="pw">
        <input
          id={id}
          name={props.name}
          type={shown ? 'text' : 'password'}
          autoComplete={props.autoComplete}
          required
          minLength={12}
          maxLength={128}
          value={props.value}
          aria-describedby={props.hint === false ? undefined : `${id}-hint`}
          onChange={(e) => props.onChange(e.target.value)}
        />
        <button type="button" className="btn ghost" aria-pressed={shown} onClick={() => setShown(!shown)}>
          {shown ? 'Hide' : 'Show'}
          <span className="sr-only"> {props.label}</span>
        </button>
      </div>
      {props.hint === false ? null : (
        <small id={`${id}-hint`}>12 to 128 characters; not a common password and not containing your name or email.</small>
      )}
    </div>
  );
}
