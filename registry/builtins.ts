/**
 * The registries with hitloop's own providers and blueprints in them. Import the registries from
 * here wherever a run's parts are looked up by name (activities, operator API, gateway).
 */
import { staticFormBlueprint } from '../blueprints/staticForm.ts';
import { localProvider } from '../providers/local.ts';
import { mockProvider } from '../providers/mock.ts';
import { mturkProvider } from '../providers/mturk/provider.ts';
import { prolificProvider } from '../providers/prolific/provider.ts';
import { blueprints, providers } from './index.ts';

for (const provider of [mockProvider, localProvider, prolificProvider, mturkProvider]) if (!providers.has(provider.type)) providers.register(provider);
for (const blueprint of [staticFormBlueprint]) if (!blueprints.has(blueprint.type)) blueprints.register(blueprint);

export { blueprints, providers };
