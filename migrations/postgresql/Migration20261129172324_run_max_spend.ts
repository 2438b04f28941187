import { Migration } from '@mikro-orm/migrations';

export class Migration20261129172324_run_max_spend extends Migration {
  override name = 'Migration20261129172324_run_max_spend';

  override up(): void | Promise<void> {
    this.addSql(`alter table "task_run" add "max_spend" numeric(14,4) null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "task_run" drop column "max_spend";`);
  }
}
