import { Migration } from '@mikro-orm/migrations';

export class Migration20261124211530_initial extends Migration {
  override name = 'Migration20261124211530_initial';

  override up(): void | Promise<void> {
    this.addSql(
      `create table "project" ("id" varchar(255) not null, "name" varchar(255) not null, "owner" varchar(255) null, "budget" numeric(14,4) null, "created_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`alter table "project" add constraint "project_name_unique" unique ("name");`);

    this.addSql(
      `create table "provider_call" ("id" bigserial primary key, "provider" varchar(255) not null, "operation" varchar(255) not null, "request_key" varchar(255) not null, "target" text not null, "payload" jsonb not null, "created_at" timestamptz not null);`,
    );
    this.addSql(`create index "provider_call_operation_request_key_index" on "provider_call" ("operation", "request_key");`);

    this.addSql(
      `create table "qualification" ("id" varchar(255) not null, "name" varchar(255) not null, "description" text null, "created_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`alter table "qualification" add constraint "qualification_name_unique" unique ("name");`);

    this.addSql(
      `create table "task" ("id" varchar(255) not null, "name" varchar(255) not null, "project_id" varchar(255) null, "created_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`alter table "task" add constraint "task_name_unique" unique ("name");`);

    this.addSql(
      `create table "task_run" ("id" varchar(255) not null, "task_id" varchar(255) not null, "status" text not null, "workflow_id" varchar(255) not null, "config" jsonb not null, "provider_type" varchar(255) not null, "blueprint_type" varchar(255) not null, "reward" numeric(14,4) not null, "end_reason" text null, "failure_reason" text null, "assignment_count" int not null default 0, "data_sha256" varchar(255) null, "created_at" timestamptz not null, "ended_at" timestamptz null, primary key ("id"));`,
    );

    this.addSql(
      `create table "assignment" ("id" varchar(255) not null, "task_run_id" varchar(255) not null, "index" int not null, "data" jsonb not null, "created_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`alter table "assignment" add constraint "assignment_task_run_id_index_unique" unique ("task_run_id", "index");`);

    this.addSql(
      `create table "worker" ("id" varchar(255) not null, "provider" varchar(255) not null, "provider_worker_id" varchar(255) not null, "blocked" boolean not null default false, "created_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(
      `alter table "worker" add constraint "worker_provider_provider_worker_id_unique" unique ("provider", "provider_worker_id");`,
    );

    this.addSql(
      `create table "unit" ("id" varchar(255) not null, "assignment_id" varchar(255) not null, "task_run_id" varchar(255) not null, "unit_index" int not null, "kind" text not null default 'normal', "status" text not null, "pay" numeric(14,4) not null, "provider_unit_id" varchar(255) null, "launch_batch" int null, "worker_id" varchar(255) null, "created_at" timestamptz not null, "launched_at" timestamptz null, "assigned_at" timestamptz null, "completed_at" timestamptz null, "ended_at" timestamptz null, "expired_by" varchar(255) null, primary key ("id"));`,
    );
    this.addSql(`create index "unit_task_run_id_status_index" on "unit" ("task_run_id", "status");`);
    this.addSql(`create index "unit_task_run_id_launch_batch_index" on "unit" ("task_run_id", "launch_batch");`);
    this.addSql(`create index "unit_worker_id_status_index" on "unit" ("worker_id", "status");`);
    this.addSql(`alter table "unit" add constraint "unit_assignment_id_unit_index_unique" unique ("assignment_id", "unit_index");`);

    this.addSql(
      `create table "onboarding_agent" ("id" varchar(255) not null, "task_run_id" varchar(255) not null, "worker_id" varchar(255) not null, "status" text not null, "submission" jsonb null, "created_at" timestamptz not null, "ended_at" timestamptz null, primary key ("id"));`,
    );

    this.addSql(
      `create table "granted_qualification" ("id" varchar(255) not null, "worker_id" varchar(255) not null, "qualification_id" varchar(255) not null, "value" int not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(
      `alter table "granted_qualification" add constraint "granted_qualification_worker_id_qualification_id_unique" unique ("worker_id", "qualification_id");`,
    );

    this.addSql(
      `create table "agent" ("id" varchar(255) not null, "unit_id" varchar(255) not null, "assignment_id" varchar(255) not null, "task_run_id" varchar(255) not null, "worker_id" varchar(255) not null, "status" text not null, "registration_key" varchar(255) null, "init_data" jsonb null, "state" jsonb null, "submission" jsonb null, "submit_key" varchar(255) null, "created_at" timestamptz not null, "started_at" timestamptz null, "submitted_at" timestamptz null, "ended_at" timestamptz null, "last_seen_at" timestamptz null, primary key ("id"));`,
    );
    this.addSql(`create index "agent_worker_id_status_index" on "agent" ("worker_id", "status");`);
    this.addSql(`create index "agent_task_run_id_status_index" on "agent" ("task_run_id", "status");`);
    this.addSql(`alter table "agent" add constraint "agent_worker_id_registration_key_unique" unique ("worker_id", "registration_key");`);

    this.addSql(
      `create table "review" ("id" varchar(255) not null, "unit_id" varchar(255) not null, "agent_id" varchar(255) not null, "decision" text not null, "note" text null, "request_key" varchar(255) not null, "created_at" timestamptz not null, primary key ("id"));`,
    );
    this.addSql(`alter table "review" add constraint "review_request_key_unique" unique ("request_key");`);

    this.addSql(
      `create table "outbox_message" ("id" bigserial primary key, "agent_id" varchar(255) not null, "seq" int not null, "kind" text not null, "payload" jsonb not null, "dedupe_key" text not null, "created_at" timestamptz not null, "acked_at" timestamptz null);`,
    );
    this.addSql(`alter table "outbox_message" add constraint "outbox_message_agent_id_seq_unique" unique ("agent_id", "seq");`);
    this.addSql(
      `alter table "outbox_message" add constraint "outbox_message_agent_id_dedupe_key_unique" unique ("agent_id", "dedupe_key");`,
    );

    this.addSql(
      `create table "bonus" ("id" varchar(255) not null, "agent_id" varchar(255) not null, "unit_id" varchar(255) not null, "worker_id" varchar(255) not null, "task_run_id" varchar(255) not null, "amount" numeric(14,4) not null, "reason" text not null, "request_key" varchar(255) not null, "status" text not null default 'pending', "provider_ref" varchar(255) null, "created_at" timestamptz not null, "paid_at" timestamptz null, primary key ("id"));`,
    );
    this.addSql(`alter table "bonus" add constraint "bonus_request_key_unique" unique ("request_key");`);

    this.addSql(
      `alter table "task" add constraint "task_project_id_foreign" foreign key ("project_id") references "project" ("id") on delete set null;`,
    );

    this.addSql(
      `alter table "task_run" add constraint "task_run_task_id_foreign" foreign key ("task_id") references "task" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "task_run" add constraint "task_run_status_check" check ("status" in ('launching', 'running', 'draining', 'completed', 'cancelled', 'failed'));`,
    );

    this.addSql(
      `alter table "assignment" add constraint "assignment_task_run_id_foreign" foreign key ("task_run_id") references "task_run" ("id") on delete cascade;`,
    );

    this.addSql(
      `alter table "unit" add constraint "unit_assignment_id_foreign" foreign key ("assignment_id") references "assignment" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "unit" add constraint "unit_task_run_id_foreign" foreign key ("task_run_id") references "task_run" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "unit" add constraint "unit_worker_id_foreign" foreign key ("worker_id") references "worker" ("id") on delete set null;`,
    );
    this.addSql(`alter table "unit" add constraint "unit_kind_check" check ("kind" in ('normal', 'screening', 'gold'));`);
    this.addSql(
      `alter table "unit" add constraint "unit_status_check" check ("status" in ('created', 'launched', 'assigned', 'completed', 'accepted', 'rejected', 'soft_rejected', 'expired'));`,
    );

    this.addSql(
      `alter table "onboarding_agent" add constraint "onboarding_agent_task_run_id_foreign" foreign key ("task_run_id") references "task_run" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "onboarding_agent" add constraint "onboarding_agent_worker_id_foreign" foreign key ("worker_id") references "worker" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "onboarding_agent" add constraint "onboarding_agent_status_check" check ("status" in ('onboarding', 'passed', 'failed', 'disconnect', 'timeout', 'expired'));`,
    );

    this.addSql(
      `alter table "granted_qualification" add constraint "granted_qualification_worker_id_foreign" foreign key ("worker_id") references "worker" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "granted_qualification" add constraint "granted_qualification_qualification_id_foreign" foreign key ("qualification_id") references "qualification" ("id") on delete cascade;`,
    );

    this.addSql(
      `alter table "agent" add constraint "agent_unit_id_foreign" foreign key ("unit_id") references "unit" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "agent" add constraint "agent_assignment_id_foreign" foreign key ("assignment_id") references "assignment" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "agent" add constraint "agent_task_run_id_foreign" foreign key ("task_run_id") references "task_run" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "agent" add constraint "agent_worker_id_foreign" foreign key ("worker_id") references "worker" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "agent" add constraint "agent_status_check" check ("status" in ('none', 'accepted', 'onboarding', 'waiting', 'in_task', 'completed', 'approved', 'rejected', 'soft_rejected', 'disconnect', 'timeout', 'returned', 'expired', 'partner_disconnect'));`,
    );

    this.addSql(
      `alter table "review" add constraint "review_unit_id_foreign" foreign key ("unit_id") references "unit" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "review" add constraint "review_agent_id_foreign" foreign key ("agent_id") references "agent" ("id") on delete cascade;`,
    );
    this.addSql(`alter table "review" add constraint "review_decision_check" check ("decision" in ('approve', 'reject', 'soft_reject'));`);

    this.addSql(
      `alter table "outbox_message" add constraint "outbox_message_agent_id_foreign" foreign key ("agent_id") references "agent" ("id") on delete cascade;`,
    );

    this.addSql(
      `alter table "bonus" add constraint "bonus_agent_id_foreign" foreign key ("agent_id") references "agent" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "bonus" add constraint "bonus_unit_id_foreign" foreign key ("unit_id") references "unit" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "bonus" add constraint "bonus_worker_id_foreign" foreign key ("worker_id") references "worker" ("id") on delete cascade;`,
    );
    this.addSql(
      `alter table "bonus" add constraint "bonus_task_run_id_foreign" foreign key ("task_run_id") references "task_run" ("id") on delete cascade;`,
    );
    this.addSql(`alter table "bonus" add constraint "bonus_status_check" check ("status" in ('pending', 'paid'));`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "task" drop constraint "task_project_id_foreign";`);
    this.addSql(`alter table "granted_qualification" drop constraint "granted_qualification_qualification_id_foreign";`);
    this.addSql(`alter table "task_run" drop constraint "task_run_task_id_foreign";`);
    this.addSql(`alter table "assignment" drop constraint "assignment_task_run_id_foreign";`);
    this.addSql(`alter table "unit" drop constraint "unit_task_run_id_foreign";`);
    this.addSql(`alter table "onboarding_agent" drop constraint "onboarding_agent_task_run_id_foreign";`);
    this.addSql(`alter table "agent" drop constraint "agent_task_run_id_foreign";`);
    this.addSql(`alter table "bonus" drop constraint "bonus_task_run_id_foreign";`);
    this.addSql(`alter table "unit" drop constraint "unit_assignment_id_foreign";`);
    this.addSql(`alter table "agent" drop constraint "agent_assignment_id_foreign";`);
    this.addSql(`alter table "unit" drop constraint "unit_worker_id_foreign";`);
    this.addSql(`alter table "onboarding_agent" drop constraint "onboarding_agent_worker_id_foreign";`);
    this.addSql(`alter table "granted_qualification" drop constraint "granted_qualification_worker_id_foreign";`);
    this.addSql(`alter table "agent" drop constraint "agent_worker_id_foreign";`);
    this.addSql(`alter table "bonus" drop constraint "bonus_worker_id_foreign";`);
    this.addSql(`alter table "agent" drop constraint "agent_unit_id_foreign";`);
    this.addSql(`alter table "review" drop constraint "review_unit_id_foreign";`);
    this.addSql(`alter table "bonus" drop constraint "bonus_unit_id_foreign";`);
    this.addSql(`alter table "review" drop constraint "review_agent_id_foreign";`);
    this.addSql(`alter table "outbox_message" drop constraint "outbox_message_agent_id_foreign";`);
    this.addSql(`alter table "bonus" drop constraint "bonus_agent_id_foreign";`);

    this.addSql(`drop table if exists "project" cascade;`);
    this.addSql(`drop table if exists "provider_call" cascade;`);
    this.addSql(`drop table if exists "qualification" cascade;`);
    this.addSql(`drop table if exists "task" cascade;`);
    this.addSql(`drop table if exists "task_run" cascade;`);
    this.addSql(`drop table if exists "assignment" cascade;`);
    this.addSql(`drop table if exists "worker" cascade;`);
    this.addSql(`drop table if exists "unit" cascade;`);
    this.addSql(`drop table if exists "onboarding_agent" cascade;`);
    this.addSql(`drop table if exists "granted_qualification" cascade;`);
    this.addSql(`drop table if exists "agent" cascade;`);
    this.addSql(`drop table if exists "review" cascade;`);
    this.addSql(`drop table if exists "outbox_message" cascade;`);
    this.addSql(`drop table if exists "bonus" cascade;`);
  }
}
