/**
 * `hitloop config get|set|unset|list`: read and edit the user config file, and show the effective
 * settings with where each comes from (environment, file, default).
 */
import type { Command } from 'commander';
import { effectiveSettings, maskSetting } from '../../config/effectiveSettings.ts';
import { ConfigError } from '../../config/errors.ts';
import { isUserConfigKey, setUserConfigValue, unsetUserConfigValue, USER_CONFIG_KEYS, userConfigPath } from '../../config/userConfig.ts';
import { unknownKeyMessage } from '../../config/zodIssues.ts';

export interface ConfigCommandIo {
  env?: NodeJS.ProcessEnv;
  /** Where results go (stdout by default); errors go through commander (stderr, exit code 2). */
  write?: (text: string) => void;
}

export function registerConfigCommands(program: Command, io: ConfigCommandIo = {}): Command {
  const env = io.env ?? process.env;
  const write = io.write ?? ((text: string) => void process.stdout.write(text));

  const config = program
    .command('config')
    .description(`show or change settings in the user config file (${userConfigPath(env)})`);

  config
    .command('get')
    .description('print the effective value of a setting')
    .argument('<key>', `one of ${USER_CONFIG_KEYS.join(', ')}`)
    .action(function (this: Command, key: string) {
      run(this, () => {
        if (!isUserConfigKey(key)) throw ConfigError.single(key, unknownKeyMessage(key, USER_CONFIG_KEYS));
        const setting = effectiveSettings(env).find((s) => s.key === key);
        write(`${setting?.value ?? ''}\n`);
      });
    });

  config
    .command('set')
    .description('store a setting in the user config file')
    .argument('<key>', `one of ${USER_CONFIG_KEYS.join(', ')}`)
    .argument('<value>')
    .action(function (this: Command, key: string, value: string) {
      run(this, () => {
        setUserConfigValue(key, value, env);
        const setting = effectiveSettings(env).find((s) => s.key === key);
        write(`${key} set in ${userConfigPath(env)}\n`);
        if (setting?.source === 'env') write(`note: ${setting.envVar} is set in the environment and takes precedence\n`);
      });
    });

  config
    .command('unset')
    .description('remove a setting from the user config file (its default or environment value applies again)')
    .argument('<key>')
    .action(function (this: Command, key: string) {
      run(this, () => {
        const removed = unsetUserConfigValue(key, env);
        write(removed ? `${key} removed from ${userConfigPath(env)}\n` : `${key} was not set in ${userConfigPath(env)}\n`);
      });
    });

  config
    .command('list')
    .description('show every setting: effective value and where it comes from (secrets masked)')
    .option('--json', 'print JSON')
    .action(function (this: Command, options: { json?: boolean }) {
      run(this, () => {
        const rows = effectiveSettings(env).map((s) => ({ ...s, value: maskSetting(s.key, s.value) }));
        if (options.json) {
          write(`${JSON.stringify({ file: userConfigPath(env), settings: rows }, null, 2)}\n`);
          return;
        }
        const keyWidth = Math.max(...rows.map((r) => r.key.length));
        const valueWidth = Math.max(...rows.map((r) => String(r.value).length));
        write(`# user config file: ${userConfigPath(env)}\n`);
        for (const row of rows) {
          const from = row.source === 'env' ? `env ${row.envVar}` : row.source;
          write(`${row.key.padEnd(keyWidth)}  ${String(row.value).padEnd(valueWidth)}  (${from})\n`);
        }
      });
    });

  return config;
}

/** Report configuration mistakes as a command error (exit code 2) rather than a stack trace. */
function run(command: Command, action: () => void): void {
  try {
    action();
  } catch (error) {
    if (error instanceof ConfigError) command.error(error.message, { exitCode: 2, code: 'hitloop.config' });
    throw error;
  }
}
