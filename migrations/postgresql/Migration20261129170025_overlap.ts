import { Migration } from '@mikro-orm/migrations';

export class Migration20261129170025_overlap extends Migration {
  override name = 'Migration20261129170025_overlap';

  override up(): void | Promise<void> {
    this.addSql(
      `create table "item_aggregate" ("assignment_id" varchar(255) not null, "task_run_id" varchar(255) not null, "method" varchar(255) not null, "fields" jsonb not null, "confidence" double precision null, "submitted" int not null, "units" int not null, "updated_at" timestamptz not null, primary key ("assignment_id"));`,
    );
    this.addSql(`create index "item_aggregate_task_run_id_index" on "item_aggregate" ("task_run_id");`);

    this.addSql(
      `create table "item_claim" ("id" bigserial primary key, "task_id" varchar(255) not null, "item_key" varchar(255) not null, "worker_id" varchar(255) not null, "unit_id" varchar(255) not null, "created_at" timestamptz not null);`,
    );
    this.addSql(
      `alter table "item_claim" add constraint "item_claim_task_id_item_key_worker_id_unique" unique ("task_id", "item_key", "worker_id");`,
    );

    this.addSql(`alter table "task_run" add "live_overlap" jsonb null;`);

    this.addSql(`alter table "assignment" add "item_key" varchar(255) null;`);
    this.addSql(`create index "assignment_task_run_id_item_key_index" on "assignment" ("task_run_id", "item_key");`);

    this.addSql(
      `alter table "item_aggregate" add constraint "item_aggregate_assignment_id_foreign" foreign key ("assignment_id") references "assignment" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "item_aggregate" add constraint "item_aggregate_task_run_id_foreign" foreign key ("task_run_id") references "task_run" ("id") on delete cascade;`,
    );

    this.addSql(
      `alter table "item_claim" add constraint "item_claim_task_id_foreign" foreign key ("task_id") references "task" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "item_claim" add constraint "item_claim_worker_id_foreign" foreign key ("worker_id") references "worker" ("id") on delete cascade;`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "item_aggregate" cascade;`);
    this.addSql(`drop table if exists "item_claim" cascade;`);

    this.addSql(`drop index "assignment_task_run_id_item_key_index";`);
    this.addSql(`alter table "assignment" drop column "item_key";`);

    this.addSql(`alter table "task_run" drop column "live_overlap";`);
  }
}
