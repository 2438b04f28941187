/** Task-run configs for tests: the static-form blueprint on the mock provider, inline data. */
export function formConfig(overrides: Record<string, unknown> = {}, assignments = 5): Record<string, unknown> {
  return {
    task_name: `test-task-${Math.random().toString(36).slice(2, 8)}`,
    task_title: 'Label a sentence',
    task_description: 'Say whether the sentence is positive.',
    task_tags: ['test'],
    task_reward: 0.5,
    provider: 'mock',
    blueprint: { type: 'static-form', fields: [{ name: 'label', type: 'select', options: ['positive', 'negative'] }] },
    data: Array.from({ length: assignments }, (_, i) => ({ text: `sentence ${i}` })),
    ...overrides,
  };
}
