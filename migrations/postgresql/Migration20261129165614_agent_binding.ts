import { Migration } from '@mikro-orm/migrations';

export class Migration20261129165614_agent_binding extends Migration {
  override name = 'Migration20261129165614_agent_binding';

  override up(): void | Promise<void> {
    this.addSql(`alter table "agent" add "connection_id" varchar(255) null, add "live_bytes" int not null default 0;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "agent" drop column "connection_id", drop column "live_bytes";`);
  }
}
