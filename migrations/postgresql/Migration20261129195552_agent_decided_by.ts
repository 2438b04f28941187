import { Migration } from '@mikro-orm/migrations';

export class Migration20261129195552_agent_decided_by extends Migration {
  override name = 'Migration20261129195552_agent_decided_by';

  override up(): void | Promise<void> {
    this.addSql(`alter table "agent" add "decided_by" varchar(255) null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "agent" drop column "decided_by";`);
  }
}
