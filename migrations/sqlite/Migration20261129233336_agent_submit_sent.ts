import { Migration } from '@mikro-orm/migrations';

export class Migration20261129233336_agent_submit_sent extends Migration {
  override name = 'Migration20261129233336_agent_submit_sent';

  override up(): void | Promise<void> {
    this.addSql(`alter table \`agent\` add column \`submit_sent_at\` datetime null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table \`agent\` drop column \`submit_sent_at\`;`);
  }
}
