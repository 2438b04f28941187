import { Migration } from '@mikro-orm/migrations';

export class Migration20261129165612_agent_binding extends Migration {
  override name = 'Migration20261129165612_agent_binding';

  override up(): void | Promise<void> {
    this.addSql(`alter table \`agent\` add column \`connection_id\` text null;`);
    this.addSql(`alter table \`agent\` add column \`live_bytes\` integer not null default 0;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table \`agent\` drop column \`connection_id\`;`);
    this.addSql(`alter table \`agent\` drop column \`live_bytes\`;`);
  }
}
