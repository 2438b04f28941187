import { Migration } from '@mikro-orm/migrations';

export class Migration20261124211530_initial extends Migration {
  override name = 'Migration20261124211530_initial';

  override up(): void | Promise<void> {
    this.addSql(
      `create table \`project\` (\`id\` text not null primary key, \`name\` text not null, \`owner\` text null, \`budget\` numeric(14,4) null, \`created_at\` datetime not null);`,
    );
    this.addSql(`create unique index \`project_name_unique\` on \`project\` (\`name\`);`);

    this.addSql(
      `create table \`provider_call\` (\`id\` integer not null primary key autoincrement, \`provider\` text not null, \`operation\` text not null, \`request_key\` text not null, \`target\` text not null, \`payload\` json not null, \`created_at\` datetime not null);`,
    );
    this.addSql(`create index \`provider_call_operation_request_key_index\` on \`provider_call\` (\`operation\`, \`request_key\`);`);

    this.addSql(
      `create table \`qualification\` (\`id\` text not null primary key, \`name\` text not null, \`description\` text null, \`created_at\` datetime not null);`,
    );
    this.addSql(`create unique index \`qualification_name_unique\` on \`qualification\` (\`name\`);`);

    this.addSql(
      `create table \`task\` (\`id\` text not null primary key, \`name\` text not null, \`project_id\` text null, \`created_at\` datetime not null, constraint \`task_project_id_foreign\` foreign key (\`project_id\`) references \`project\` (\`id\`) on delete set null);`,
    );
    this.addSql(`create unique index \`task_name_unique\` on \`task\` (\`name\`);`);
    this.addSql(`create index \`task_project_id_index\` on \`task\` (\`project_id\`);`);

    this.addSql(
      `create table \`task_run\` (\`id\` text not null primary key, \`task_id\` text not null, \`status\` text check (\`status\` in ('launching', 'running', 'draining', 'completed', 'cancelled', 'failed')) not null, \`workflow_id\` text not null, \`config\` json not null, \`provider_type\` text not null, \`blueprint_type\` text not null, \`reward\` numeric(14,4) not null, \`end_reason\` text null, \`failure_reason\` text null, \`assignment_count\` integer not null default 0, \`data_sha256\` text null, \`created_at\` datetime not null, \`ended_at\` datetime null, constraint \`task_run_task_id_foreign\` foreign key (\`task_id\`) references \`task\` (\`id\`) on delete cascade);`,
    );
    this.addSql(`create index \`task_run_task_id_index\` on \`task_run\` (\`task_id\`);`);

    this.addSql(
      `create table \`assignment\` (\`id\` text not null primary key, \`task_run_id\` text not null, \`index\` integer not null, \`data\` json not null, \`created_at\` datetime not null, constraint \`assignment_task_run_id_foreign\` foreign key (\`task_run_id\`) references \`task_run\` (\`id\`) on delete cascade);`,
    );
    this.addSql(`create index \`assignment_task_run_id_index\` on \`assignment\` (\`task_run_id\`);`);
    this.addSql(`create unique index \`assignment_task_run_id_index_unique\` on \`assignment\` (\`task_run_id\`, \`index\`);`);

    this.addSql(
      `create table \`worker\` (\`id\` text not null primary key, \`provider\` text not null, \`provider_worker_id\` text not null, \`blocked\` integer not null default false, \`created_at\` datetime not null);`,
    );
    this.addSql(`create unique index \`worker_provider_provider_worker_id_unique\` on \`worker\` (\`provider\`, \`provider_worker_id\`);`);

    this.addSql(
      `create table \`unit\` (\`id\` text not null primary key, \`assignment_id\` text not null, \`task_run_id\` text not null, \`unit_index\` integer not null, \`kind\` text check (\`kind\` in ('normal', 'screening', 'gold')) not null default 'normal', \`status\` text check (\`status\` in ('created', 'launched', 'assigned', 'completed', 'accepted', 'rejected', 'soft_rejected', 'expired')) not null, \`pay\` numeric(14,4) not null, \`provider_unit_id\` text null, \`launch_batch\` integer null, \`worker_id\` text null, \`created_at\` datetime not null, \`launched_at\` datetime null, \`assigned_at\` datetime null, \`completed_at\` datetime null, \`ended_at\` datetime null, \`expired_by\` text null, constraint \`unit_assignment_id_foreign\` foreign key (\`assignment_id\`) references \`assignment\` (\`id\`) on delete cascade, constraint \`unit_task_run_id_foreign\` foreign key (\`task_run_id\`) references \`task_run\` (\`id\`) on delete cascade, constraint \`unit_worker_id_foreign\` foreign key (\`worker_id\`) references \`worker\` (\`id\`) on delete set null);`,
    );
    this.addSql(`create index \`unit_assignment_id_index\` on \`unit\` (\`assignment_id\`);`);
    this.addSql(`create index \`unit_task_run_id_index\` on \`unit\` (\`task_run_id\`);`);
    this.addSql(`create index \`unit_worker_id_index\` on \`unit\` (\`worker_id\`);`);
    this.addSql(`create index \`unit_task_run_id_status_index\` on \`unit\` (\`task_run_id\`, \`status\`);`);
    this.addSql(`create index \`unit_task_run_id_launch_batch_index\` on \`unit\` (\`task_run_id\`, \`launch_batch\`);`);
    this.addSql(`create index \`unit_worker_id_status_index\` on \`unit\` (\`worker_id\`, \`status\`);`);
    this.addSql(`create unique index \`unit_assignment_id_unit_index_unique\` on \`unit\` (\`assignment_id\`, \`unit_index\`);`);

    this.addSql(
      `create table \`onboarding_agent\` (\`id\` text not null primary key, \`task_run_id\` text not null, \`worker_id\` text not null, \`status\` text check (\`status\` in ('onboarding', 'passed', 'failed', 'disconnect', 'timeout', 'expired')) not null, \`submission\` json null, \`created_at\` datetime not null, \`ended_at\` datetime null, constraint \`onboarding_agent_task_run_id_foreign\` foreign key (\`task_run_id\`) references \`task_run\` (\`id\`) on delete cascade, constraint \`onboarding_agent_worker_id_foreign\` foreign key (\`worker_id\`) references \`worker\` (\`id\`) on delete cascade);`,
    );
    this.addSql(`create index \`onboarding_agent_task_run_id_index\` on \`onboarding_agent\` (\`task_run_id\`);`);
    this.addSql(`create index \`onboarding_agent_worker_id_index\` on \`onboarding_agent\` (\`worker_id\`);`);

    this.addSql(
      `create table \`granted_qualification\` (\`id\` text not null primary key, \`worker_id\` text not null, \`qualification_id\` text not null, \`value\` integer not null, \`created_at\` datetime not null, \`updated_at\` datetime not null, constraint \`granted_qualification_worker_id_foreign\` foreign key (\`worker_id\`) references \`worker\` (\`id\`) on delete cascade, constraint \`granted_qualification_qualification_id_foreign\` foreign key (\`qualification_id\`) references \`qualification\` (\`id\`) on delete cascade);`,
    );
    this.addSql(`create index \`granted_qualification_worker_id_index\` on \`granted_qualification\` (\`worker_id\`);`);
    this.addSql(`create index \`granted_qualification_qualification_id_index\` on \`granted_qualification\` (\`qualification_id\`);`);
    this.addSql(
      `create unique index \`granted_qualification_worker_id_qualification_id_unique\` on \`granted_qualification\` (\`worker_id\`, \`qualification_id\`);`,
    );

    this.addSql(
      `create table \`agent\` (\`id\` text not null primary key, \`unit_id\` text not null, \`assignment_id\` text not null, \`task_run_id\` text not null, \`worker_id\` text not null, \`status\` text check (\`status\` in ('none', 'accepted', 'onboarding', 'waiting', 'in_task', 'completed', 'approved', 'rejected', 'soft_rejected', 'disconnect', 'timeout', 'returned', 'expired', 'partner_disconnect')) not null, \`registration_key\` text null, \`init_data\` json null, \`state\` json null, \`submission\` json null, \`submit_key\` text null, \`created_at\` datetime not null, \`started_at\` datetime null, \`submitted_at\` datetime null, \`ended_at\` datetime null, \`last_seen_at\` datetime null, constraint \`agent_unit_id_foreign\` foreign key (\`unit_id\`) references \`unit\` (\`id\`) on delete cascade, constraint \`agent_assignment_id_foreign\` foreign key (\`assignment_id\`) references \`assignment\` (\`id\`) on delete cascade, constraint \`agent_task_run_id_foreign\` foreign key (\`task_run_id\`) references \`task_run\` (\`id\`) on delete cascade, constraint \`agent_worker_id_foreign\` foreign key (\`worker_id\`) references \`worker\` (\`id\`) on delete cascade);`,
    );
    this.addSql(`create index \`agent_unit_id_index\` on \`agent\` (\`unit_id\`);`);
    this.addSql(`create index \`agent_assignment_id_index\` on \`agent\` (\`assignment_id\`);`);
    this.addSql(`create index \`agent_task_run_id_index\` on \`agent\` (\`task_run_id\`);`);
    this.addSql(`create index \`agent_worker_id_index\` on \`agent\` (\`worker_id\`);`);
    this.addSql(`create index \`agent_worker_id_status_index\` on \`agent\` (\`worker_id\`, \`status\`);`);
    this.addSql(`create index \`agent_task_run_id_status_index\` on \`agent\` (\`task_run_id\`, \`status\`);`);
    this.addSql(`create unique index \`agent_worker_id_registration_key_unique\` on \`agent\` (\`worker_id\`, \`registration_key\`);`);

    this.addSql(
      `create table \`review\` (\`id\` text not null primary key, \`unit_id\` text not null, \`agent_id\` text not null, \`decision\` text check (\`decision\` in ('approve', 'reject', 'soft_reject')) not null, \`note\` text null, \`request_key\` text not null, \`created_at\` datetime not null, constraint \`review_unit_id_foreign\` foreign key (\`unit_id\`) references \`unit\` (\`id\`) on delete cascade, constraint \`review_agent_id_foreign\` foreign key (\`agent_id\`) references \`agent\` (\`id\`) on delete cascade);`,
    );
    this.addSql(`create index \`review_unit_id_index\` on \`review\` (\`unit_id\`);`);
    this.addSql(`create index \`review_agent_id_index\` on \`review\` (\`agent_id\`);`);
    this.addSql(`create unique index \`review_request_key_unique\` on \`review\` (\`request_key\`);`);

    this.addSql(
      `create table \`outbox_message\` (\`id\` integer not null primary key autoincrement, \`agent_id\` text not null, \`seq\` integer not null, \`kind\` text not null, \`payload\` json not null, \`dedupe_key\` text not null, \`created_at\` datetime not null, \`acked_at\` datetime null, constraint \`outbox_message_agent_id_foreign\` foreign key (\`agent_id\`) references \`agent\` (\`id\`) on delete cascade);`,
    );
    this.addSql(`create index \`outbox_message_agent_id_index\` on \`outbox_message\` (\`agent_id\`);`);
    this.addSql(`create unique index \`outbox_message_agent_id_seq_unique\` on \`outbox_message\` (\`agent_id\`, \`seq\`);`);
    this.addSql(`create unique index \`outbox_message_agent_id_dedupe_key_unique\` on \`outbox_message\` (\`agent_id\`, \`dedupe_key\`);`);

    this.addSql(
      `create table \`bonus\` (\`id\` text not null primary key, \`agent_id\` text not null, \`unit_id\` text not null, \`worker_id\` text not null, \`task_run_id\` text not null, \`amount\` numeric(14,4) not null, \`reason\` text not null, \`request_key\` text not null, \`status\` text check (\`status\` in ('pending', 'paid')) not null default 'pending', \`provider_ref\` text null, \`created_at\` datetime not null, \`paid_at\` datetime null, constraint \`bonus_agent_id_foreign\` foreign key (\`agent_id\`) references \`agent\` (\`id\`) on delete cascade, constraint \`bonus_unit_id_foreign\` foreign key (\`unit_id\`) references \`unit\` (\`id\`) on delete cascade, constraint \`bonus_worker_id_foreign\` foreign key (\`worker_id\`) references \`worker\` (\`id\`) on delete cascade, constraint \`bonus_task_run_id_foreign\` foreign key (\`task_run_id\`) references \`task_run\` (\`id\`) on delete cascade);`,
    );
    this.addSql(`create index \`bonus_agent_id_index\` on \`bonus\` (\`agent_id\`);`);
    this.addSql(`create index \`bonus_unit_id_index\` on \`bonus\` (\`unit_id\`);`);
    this.addSql(`create index \`bonus_worker_id_index\` on \`bonus\` (\`worker_id\`);`);
    this.addSql(`create index \`bonus_task_run_id_index\` on \`bonus\` (\`task_run_id\`);`);
    this.addSql(`create unique index \`bonus_request_key_unique\` on \`bonus\` (\`request_key\`);`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists \`project\`;`);
    this.addSql(`drop table if exists \`provider_call\`;`);
    this.addSql(`drop table if exists \`qualification\`;`);
    this.addSql(`drop table if exists \`task\`;`);
    this.addSql(`drop table if exists \`task_run\`;`);
    this.addSql(`drop table if exists \`assignment\`;`);
    this.addSql(`drop table if exists \`worker\`;`);
    this.addSql(`drop table if exists \`unit\`;`);
    this.addSql(`drop table if exists \`onboarding_agent\`;`);
    this.addSql(`drop table if exists \`granted_qualification\`;`);
    this.addSql(`drop table if exists \`agent\`;`);
    this.addSql(`drop table if exists \`review\`;`);
    this.addSql(`drop table if exists \`outbox_message\`;`);
    this.addSql(`drop table if exists \`bonus\`;`);
  }
}
