/**
 * What a simulated worker submits: a valid answer for the unit's form. For `static-form` the init
 * data lists the fields (see blueprints/staticForm.ts); without fields (a custom template) the
 * answer is a single free-text value.
 */

interface FieldLike {
  name: string;
  type?: string;
  options?: string[];
  required?: boolean;
  min?: number;
  max?: number;
  value?: string;
}

function fieldsOf(initData: unknown): FieldLike[] {
  const fields = (initData as { fields?: unknown } | null)?.fields;
  if (!Array.isArray(fields)) return [];
  return fields.filter((f): f is FieldLike => typeof f === 'object' && f !== null && typeof (f as FieldLike).name === 'string');
}

export function simulatedAnswer(initData: unknown, random: () => number, by: string): Record<string, unknown> {
  const fields = fieldsOf(initData);
  if (fields.length === 0) return { answer: `simulated answer by ${by}` };
  const answer: Record<string, unknown> = {};
  for (const field of fields) {
    switch (field.type) {
      case 'number': {
        const min = field.min ?? 0;
        const max = field.max ?? min + 9;
        answer[field.name] = Math.min(max, min + Math.floor(random() * (max - min + 1)));
        break;
      }
      case 'image':
      case 'audio':
      case 'video':
      case 'link':
        // Display fields show the unit's data; they submit nothing.
        break;
      case 'hidden':
        answer[field.name] = field.value ?? '';
        break;
      case 'checkboxes': {
        const options = field.options ?? [];
        if (options.length > 0) answer[field.name] = [options[Math.floor(random() * options.length)]];
        break;
      }
      case 'checkbox':
        answer[field.name] = random() < 0.5;
        break;
      case 'radio':
      case 'select': {
        const options = field.options ?? [];
        if (options.length > 0) answer[field.name] = options[Math.floor(random() * options.length)];
        break;
      }
      default:
        answer[field.name] = `simulated answer by ${by}`;
    }
  }
  return answer;
}
