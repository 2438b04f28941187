import { Migration } from '@mikro-orm/migrations';

export class Migration20261129170023_overlap extends Migration {
  override name = 'Migration20261129170023_overlap';

  override up(): void | Promise<void> {
    this.addSql(
      `create table \`item_aggregate\` (\`assignment_id\` text not null primary key, \`task_run_id\` text not null, \`method\` text not null, \`fields\` json not null, \`confidence\` double null, \`submitted\` integer not null, \`units\` integer not null, \`updated_at\` datetime not null, constraint \`item_aggregate_assignment_id_foreign\` foreign key (\`assignment_id\`) references \`assignment\` (\`id\`) on update cascade on delete cascade, constraint \`item_aggregate_task_run_id_foreign\` foreign key (\`task_run_id\`) references \`task_run\` (\`id\`) on delete cascade);`,
    );
    this.addSql(`create index \`item_aggregate_task_run_id_index\` on \`item_aggregate\` (\`task_run_id\`);`);

    this.addSql(
      `create table \`item_claim\` (\`id\` integer not null primary key autoincrement, \`task_id\` text not null, \`item_key\` text not null, \`worker_id\` text not null, \`unit_id\` text not null, \`created_at\` datetime not null, constraint \`item_claim_task_id_foreign\` foreign key (\`task_id\`) references \`task\` (\`id\`) on delete cascade, constraint \`item_claim_worker_id_foreign\` foreign key (\`worker_id\`) references \`worker\` (\`id\`) on delete cascade);`,
    );
    this.addSql(`create index \`item_claim_task_id_index\` on \`item_claim\` (\`task_id\`);`);
    this.addSql(`create index \`item_claim_worker_id_index\` on \`item_claim\` (\`worker_id\`);`);
    this.addSql(
      `create unique index \`item_claim_task_id_item_key_worker_id_unique\` on \`item_claim\` (\`task_id\`, \`item_key\`, \`worker_id\`);`,
    );

    this.addSql(`alter table \`task_run\` add column \`live_overlap\` json null;`);

    this.addSql(`alter table \`assignment\` add column \`item_key\` text null;`);
    this.addSql(`create index \`assignment_task_run_id_item_key_index\` on \`assignment\` (\`task_run_id\`, \`item_key\`);`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists \`item_aggregate\`;`);
    this.addSql(`drop table if exists \`item_claim\`;`);

    this.addSql(`drop index \`assignment_task_run_id_item_key_index\`;`);
    this.addSql(`alter table \`assignment\` drop column \`item_key\`;`);

    this.addSql(`alter table \`task_run\` drop column \`live_overlap\`;`);
  }
}
