/**
 * A school's flow through the TypeScript client generated from learnplat's served OpenAPI
 * document (openapi-typescript's types, openapi-fetch's calls), as a school's web app would
 * make it: tests/core/test_core_client_typescript.py generates `schema.ts` next to this file,
 * type-checks both with tsc (strict), compiles them and runs this with node against a live
 * server.
 *
 * Environment: LEARNPLAT_BASE_URL, LEARNPLAT_TENANT (the school's slug), LEARNPLAT_STUDENT_EMAIL
 * and LEARNPLAT_STUDENT_PASSWORD (the student signs in), LEARNPLAT_STUDENT_ID,
 * LEARNPLAT_TEACHER_TOKEN and LEARNPLAT_ADMIN_TOKEN (an instructor and an admin, made by the
 * test as the Python client's test makes them).
 *
 * Every step checks what it got and throws on a mismatch (exit status 1 with the reason); the
 * last line printed is a JSON summary of what was made, which the test checks against the API.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";

import createClient, { type Client } from "openapi-fetch";

import type { components, paths } from "./schema.js";

type Schemas = components["schemas"];

function setting(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === "") {
    throw new Error(`${name} is not set`);
  }
  return value;
}

const BASE = setting("LEARNPLAT_BASE_URL");
const SCHOOL = setting("LEARNPLAT_TENANT");

/** The client a school's app keeps: its school named once, and a bearer token if signed in. */
function api(token?: string): Client<paths> {
  const headers: Record<string, string> = { "X-Tenant": SCHOOL };
  if (token !== undefined) {
    headers["Authorization"] = `Bearer ${token}`;
  }
  return createClient<paths>({ baseUrl: BASE, headers });
}

/** What every openapi-fetch call answers: the parsed body of a success, or the error's. */
interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The parsed success body of a call that must answer `status` (else a readable failure). */
async function expect<T>(call: Promise<Answer<T>>, status: number, what: string): Promise<T> {
  const { data, error, response } = await call;
  if (response.status !== status || data === undefined) {
    throw new Error(`${what}: expected ${status}, got ${response.status} ` +
                    JSON.stringify(error ?? data ?? null));
  }
  return data;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The course progress (a completion's answer), not the playback state (a heartbeat's). */
function isProgress(answer: Schemas["ProgressPostOut"]): answer is Schemas["ProgressOut"] {
  return "percent" in answer;
}

async function main(): Promise<void> {
  const email = setting("LEARNPLAT_STUDENT_EMAIL");
  const studentId = Number(setting("LEARNPLAT_STUDENT_ID"));
  const teacher = api(setting("LEARNPLAT_TEACHER_TOKEN"));
  const admin = api(setting("LEARNPLAT_ADMIN_TOKEN"));

  // Sign in: a public route, the school named by the operation's own (typed) header parameter.
  const anonymous = createClient<paths>({ baseUrl: BASE });
  const login: Schemas["LoginIn"] = { email, password: setting("LEARNPLAT_STUDENT_PASSWORD") };
  const pair = await expect(anonymous.POST("/auth/login", {
    params: { header: { "X-Tenant": SCHOOL } }, body: login }), 200, "sign in");
  assert.ok(pair.expires_in > 0 && pair.access_token.length > 0, "a token pair");
  const student = api(pair.access_token);
  const profile = await expect(student.GET("/auth/profile"), 200, "profile");
  assert.equal(profile.email, email);
  assert.equal(profile.id, studentId);

  // An instructor's course: a text module with a quiz, a video module; an admin approves.
  const course = await expect(teacher.POST("/courses", {
    body: { title: "Generated TypeScript client course" } }), 201, "course");
  const inCourse = { params: { path: { course_id: course.id } } };
  const quizModule = await expect(teacher.POST("/courses/{course_id}/modules", {
    ...inCourse, body: { title: "Basics" } }), 201, "text module");
  const videoModule = await expect(teacher.POST("/courses/{course_id}/modules", {
    ...inCourse, body: { title: "Watch", kind: "video" } }), 201, "video module");
  assert.equal(videoModule.kind, "video");
  const questions: Schemas["QuestionIn"][] = [
    { type: "single_choice", prompt: "Capital of France?", options: ["Lyon", "Paris"], answer: 1 },
    { type: "true_false", prompt: "The sky is green.", answer: false },
  ];
  const quiz = await expect(teacher.POST("/courses/{course_id}/modules/{module_id}/quiz", {
    params: { path: { course_id: course.id, module_id: quizModule.id } },
    body: { title: "Check", pass_mark: 60, questions } }), 201, "quiz");
  assert.deepEqual(quiz.questions.map((q) => q.type), ["single_choice", "true_false"]);
  await expect(teacher.POST("/courses/{course_id}/submit", inCourse), 200, "submit for review");
  const approved = await expect(admin.POST("/courses/{course_id}/approve", inCourse), 200,
                                "approve");
  assert.equal(approved.status, "published");

  // The catalogue, then enrollment.
  const catalogue = await expect(student.GET("/courses"), 200, "catalogue");
  assert.ok(catalogue.items.some((c) => c.id === course.id), "the course in the catalogue");
  const enrollment = await expect(student.POST("/courses/{course_id}/enroll", inCourse), 201,
                                  "enroll");
  assert.equal(enrollment.course_id, course.id);
  assert.equal(enrollment.status, "active");

  // Progress: a module marked complete, a playback heartbeat.
  const completion: Schemas["CompletionIn"] = { module_id: quizModule.id, completed: true };
  const progress = await expect(student.POST("/progress/{course_id}", {
    ...inCourse, body: completion }), 200, "completion");
  assert.ok(isProgress(progress), "a completion answers the course progress");
  assert.equal(progress.completed, false);
  const heartbeat: Schemas["HeartbeatIn"] = {
    module_id: videoModule.id, position_seconds: 30, duration_seconds: 120 };
  const beat = await expect(student.POST("/progress/{course_id}", {
    ...inCourse, body: heartbeat }), 200, "heartbeat");
  assert.ok(!isProgress(beat), "a heartbeat answers the playback state");
  assert.equal(beat.module_id, videoModule.id);
  assert.equal(beat.position_seconds, 30);

  // A quiz attempt and its result.
  const where = { params: { path: {
    course_id: course.id, module_id: quizModule.id, quiz_id: quiz.id } } };
  const attempt = await expect(student.POST(
    "/courses/{course_id}/modules/{module_id}/quiz/{quiz_id}/attempts", where), 201, "attempt");
  const answers: Record<string, unknown> = {};
  quiz.questions.forEach((q, i) => { answers[String(q.id)] = [1, false][i]; });
  await expect(student.POST("/courses/{course_id}/modules/{module_id}/quiz/{quiz_id}/submit", {
    ...where, body: { attempt_id: attempt.id, answers } }), 200, "submit the attempt");
  const result = await expect(student.GET(
    "/courses/{course_id}/modules/{module_id}/quiz/{quiz_id}/result", where), 200, "result");
  assert.equal(result.passed, true);
  assert.equal(result.attempts_used, 1);

  // Notifications: the admin writes to the student, who reads it.
  const note: Schemas["NotifyUserIn"] = {
    title: "Welcome", body: "Glad to have you", user_id: studentId };
  await expect(admin.POST("/notifications", { body: note }), 201, "notify");
  const page = await expect(student.GET("/notifications"), 200, "notifications");
  const welcome = page.items.find((n) => n.title === "Welcome");
  assert.ok(welcome !== undefined, "the notification in the student's list");
  assert.equal(welcome.read, false);
  const unread = await expect(student.GET("/notifications/unread-count"), 200, "unread count");
  assert.ok(unread.unread >= 1, "an unread notification counted");
  const read = await expect(student.POST("/notifications/{notification_id}/read", {
    params: { path: { notification_id: welcome.id } } }), 200, "mark read");
  assert.equal(read.read, true);

  // The certificate: the course completed, asked for (issued in the background), read.
  const done = await expect(student.POST("/progress/{course_id}", {
    ...inCourse, body: { module_id: videoModule.id, completed: true } }), 200, "completion");
  assert.ok(isProgress(done) && done.completed, "the course completed");
  const asked = await student.POST("/courses/{course_id}/certificate", inCourse);
  assert.ok(asked.data !== undefined && [200, 202].includes(asked.response.status),
            `ask for the certificate: ${asked.response.status} ${JSON.stringify(asked.error)}`);
  const deadline = Date.now() + 60_000;
  let certificate: Schemas["CertificateOut"];
  for (;;) {
    const got = await student.GET("/courses/{course_id}/certificate", inCourse);
    if (got.data !== undefined && got.data.status === "issued") {
      certificate = got.data;
      break;
    }
    assert.ok(Date.now() < deadline, `no certificate issued: ${JSON.stringify(got.error)}`);
    await sleep(200);
  }
  assert.equal(certificate.id, asked.data.id);
  assert.ok(certificate.verify_url.endsWith(`/certificates/${certificate.id}/verify`),
            certificate.verify_url);

  // Its PDF, through the typed operation behind the signed pdf_url (no token, no header).
  assert.ok(certificate.pdf_url !== null, "an issued certificate has a pdf_url");
  const signed = new URL(certificate.pdf_url, BASE);
  const pdf = await createClient<paths>({ baseUrl: BASE }).GET("/certificates/{public_id}/pdf", {
    params: {
      path: { public_id: certificate.id },
      query: { expires: Number(signed.searchParams.get("expires")),
               sig: signed.searchParams.get("sig") ?? "" },
    },
    parseAs: "arrayBuffer",
  });
  assert.equal(pdf.response.status, 200, `the PDF: ${JSON.stringify(pdf.error)}`);
  assert.ok(pdf.data !== undefined);
  assert.equal(pdf.response.headers.get("content-type"), "application/pdf");
  const bytes = Buffer.from(pdf.data);
  assert.equal(bytes.subarray(0, 5).toString("latin1"), "%PDF-");

  console.log(JSON.stringify({
    student_id: profile.id,
    course_id: course.id,
    module_ids: [quizModule.id, videoModule.id],
    quiz_id: quiz.id,
    enrollment_id: enrollment.id,
    attempt_id: attempt.id,
    notification_id: welcome.id,
    certificate_id: certificate.id,
    pdf_sha256: createHash("sha256").update(bytes).digest("hex"),
  }));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
