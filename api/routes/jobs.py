from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Body, HTTPException, Request, Response

from api.deps import AdminUser
from api.errors import responses
from api.schemas import JobsEnqueued, JobStatus, Strict

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
JobName = Literal["weekly_quests", "nightly_maintenance", "nudge_sweep"]


class JobRequest(Strict):
    user_id: uuid.UUID | None = None


# One path template for both methods (`{job}`: a job's name to enqueue one, a job id to read one),
# so every method a path answers is documented on it.
@router.post(
    "/{job}",
    status_code=202,
    response_model=JobsEnqueued,
    responses={200: {"model": JobsEnqueued, "description": "Every job already existed"}, **responses(404)},
)
async def enqueue(
    job: JobName,
    request: Request,
    response: Response,
    admin: AdminUser,
    body: Annotated[JobRequest | None, Body()] = None,
) -> dict:
    """Admin only: enqueue a job now (for one user, where the job is per user). Job ids are
    deterministic (job + user + period): enqueueing twice in a period runs it once, and says so:
    202 when a job was enqueued now, 200 when every one of them already existed (`existing`)."""
    from jobs.tasks import SCHEDULES

    host = request.app.state.job_host
    user_id = str(body.user_id) if body and body.user_id else None
    if user_id is not None:
        if not await host.services.users.exists(uuid.UUID(user_id)):
            raise HTTPException(404, "user not found")
    jobs = await SCHEDULES[job](host, user_id)
    if not any(jobs.values()):
        response.status_code = 200
    return {
        "job_ids": list(jobs),
        "enqueued": [j for j, new in jobs.items() if new],
        "existing": [j for j, new in jobs.items() if not new],
    }


@router.get("/{job}", response_model=JobStatus, responses=responses(404))
async def job_status(job: str, request: Request, admin: AdminUser) -> dict:
    status = await request.app.state.job_host.queue.status(job)
    if status["status"] == "not_found":
        raise HTTPException(404, "job not found")
    return status
