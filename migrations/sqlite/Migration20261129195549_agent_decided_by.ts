import { Migration } from '@mikro-orm/migrations';

export class Migration20261129195549_agent_decided_by extends Migration {
  override name = 'Migration20261129195549_agent_decided_by';

  override up(): void | Promise<void> {
    this.addSql(`alter table \`agent\` add column \`decided_by\` text null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table \`agent\` drop column \`decided_by\`;`);
  }
}
