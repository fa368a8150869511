/**
 * Calls a school's developer could get wrong, each of which the generated types must refuse:
 * tsc fails on a `@ts-expect-error` line that is NOT an error, so this file proves that the
 * type-check of flow.ts checks something (the types are not `any`, the unions are typed).
 * Never run: only type-checked, with flow.ts, by tests/core/test_core_client_typescript.py.
 */

import type { Client } from "openapi-fetch";

import type { components, paths } from "./schema.js";

type Schemas = components["schemas"];

export async function mistakes(api: Client<paths>): Promise<void> {
  // @ts-expect-error: a path the API does not have.
  await api.GET("/course");
  // @ts-expect-error: a course's title is required.
  await api.POST("/courses", { body: { description: "no title" } });
  // @ts-expect-error: a path parameter is an integer.
  await api.GET("/courses/{course_id}", { params: { path: { course_id: "1" } } });
  // @ts-expect-error: the path parameter is missing.
  await api.GET("/courses/{course_id}");

  // @ts-expect-error: a true/false question's answer is a boolean.
  const question: Schemas["QuestionIn"] = { type: "true_false", prompt: "?", answer: 1 };
  // @ts-expect-error: no question type "essay" (the union's discriminator).
  const essay: Schemas["QuestionIn"] = { type: "essay", prompt: "?", answer: "" };
  // @ts-expect-error: a heartbeat needs the video's duration.
  const beat: Schemas["HeartbeatIn"] = { module_id: 1, position_seconds: 3 };
  // @ts-expect-error: `everyone` is `true` or absent (a const), never false.
  const everyone: Schemas["NotifyEveryoneIn"] = { title: "t", body: "b", everyone: false };
  void [question, essay, beat, everyone];

  const { data } = await api.GET("/courses/{course_id}", { params: { path: { course_id: 1 } } });
  if (data !== undefined) {
    // @ts-expect-error: a course's status is one of its enum values.
    const status: "deleted" = data.status;
    void status;
  }
}
