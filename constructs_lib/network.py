"""The platform's network: VPC (created or imported), flow logs, endpoints, task security group."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from config.model import NetworkConfig
from constructs_lib.acknowledgements import (
    NIST,
    ONE_ROLE_POLICY,
    acknowledge,
    ignore_lint_in_cdk_provider,
    skip_checkov_in_cdk_provider,
)
from constructs_lib.defaults import retention
from constructs_lib.encryption import LogEncryptionKey

# What Fargate tasks need without a NAT: pull images, write logs, read secrets, assume roles.
TASK_ENDPOINTS = {
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Ecs": ec2.InterfaceVpcEndpointAwsService.ECS,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Ssm": ec2.InterfaceVpcEndpointAwsService.SSM,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
}
# What MWAA needs in a VPC without internet access (MWAA networking docs).
AIRFLOW_ENDPOINTS = {
    "AirflowApi": ec2.InterfaceVpcEndpointAwsService.AIRFLOW_API,
    "AirflowEnv": ec2.InterfaceVpcEndpointAwsService.AIRFLOW_ENV,
    "AirflowOps": ec2.InterfaceVpcEndpointAwsService.AIRFLOW_OPS,
    "Sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
    "Monitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
}


class PlatformNetwork(Construct):
    """VPC over 2+ AZs with private subnets for tasks and Airflow.

    :param config: the environment's network settings.
    :param log_group_prefix: name prefix of the flow-log group (``<prefix>/vpc-flow-logs``).
    :param log_retention_days / removal_policy: for the flow-log group and its key.
    :param mwaa_endpoints: add the endpoints MWAA needs without a NAT (a self-hosted
        Airflow needs only the tasks' endpoints).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: NetworkConfig,
        log_group_prefix: str,
        removal_policy: cdk.RemovalPolicy,
        mwaa_endpoints: bool = True,
    ) -> None:
        super().__init__(scope, id)
        private_type = (
            ec2.SubnetType.PRIVATE_ISOLATED
            if config.nat_gateways == 0 and not config.vpc_id
            else ec2.SubnetType.PRIVATE_WITH_EGRESS
        )
        if config.vpc_id:
            self.vpc: ec2.IVpc = ec2.Vpc.from_lookup(self, "Vpc", vpc_id=config.vpc_id)
        else:
            self.vpc = ec2.Vpc(
                self,
                "Vpc",
                ip_addresses=ec2.IpAddresses.cidr(config.cidr),
                max_azs=config.max_azs,
                nat_gateways=config.nat_gateways,
                # Public subnets exist only to host NAT gateways (and an internet-facing
                # load balancer, when config asks for one); nothing gets a public IP.
                subnet_configuration=(
                    [
                        ec2.SubnetConfiguration(
                            name="Public",
                            subnet_type=ec2.SubnetType.PUBLIC,
                            map_public_ip_on_launch=False,
                        )
                    ]
                    if config.nat_gateways
                    else []
                )
                + [
                    ec2.SubnetConfiguration(
                        name="Private",
                        subnet_type=private_type,
                        cidr_mask=20,
                    )
                ],
                enable_dns_hostnames=True,
                enable_dns_support=True,
                restrict_default_security_group=True,
            )
        for public in self.vpc.public_subnets:
            acknowledge(
                public,
                "VPCNoUnrestrictedRouteToIGW",
                "A public subnet's route to the internet gateway is what it is for: it "
                "hosts only NAT gateways and, if config asks, an internet-facing load "
                "balancer; tasks and Airflow run in the private subnets.",
                pack=NIST,
            )
        #: Where Fargate tasks and Airflow run.
        if isinstance(self.vpc, ec2.Vpc):
            ignore_lint_in_cdk_provider(
                cdk.Stack.of(self),
                "Custom::VpcRestrictDefaultSG",
                "W3005",
                "CDK adds a DependsOn that its own GetAtt already implies: harmless.",
            )
            skip_checkov_in_cdk_provider(
                cdk.Stack.of(self), "Custom::VpcRestrictDefaultSG", in_vpc=False
            )
        self.private_subnets = self.vpc.select_subnets(subnet_type=private_type).subnets

        flow_key = LogEncryptionKey(
            self,
            "FlowLogKey",
            description="Encrypts the VPC flow logs",
            log_group_prefix=f"{log_group_prefix}/",
            removal_policy=removal_policy,
        )
        self.flow_log_group = logs.LogGroup(
            self,
            "FlowLogGroup",
            log_group_name=f"{log_group_prefix}/vpc-flow-logs",
            retention=retention(config.flow_log_retention_days),
            encryption_key=flow_key.key,
            removal_policy=removal_policy,
        )
        flow_log = ec2.FlowLog(
            self,
            "FlowLog",
            resource_type=ec2.FlowLogResourceType.from_vpc(self.vpc),
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        acknowledge(flow_log, "IAMNoInlinePolicy", ONE_ROLE_POLICY, pack=NIST)

        self.vpc.add_gateway_endpoint(
            "S3Endpoint",
            service=ec2.GatewayVpcEndpointAwsService.S3,
            subnets=[ec2.SubnetSelection(subnets=self.private_subnets)],
        )
        if config.interface_endpoints:
            endpoint_security_group = ec2.SecurityGroup(
                self,
                "EndpointSecurityGroup",
                vpc=self.vpc,
                description="Interface endpoints: HTTPS from inside the VPC only",
                allow_all_outbound=False,
            )
            endpoint_security_group.add_ingress_rule(
                ec2.Peer.ipv4(config.cidr if not config.vpc_id else self.vpc.vpc_cidr_block),
                ec2.Port.tcp(443),
                "HTTPS from the VPC",
            )
            endpoints = dict(TASK_ENDPOINTS)
            if config.nat_gateways == 0 and mwaa_endpoints:
                endpoints |= AIRFLOW_ENDPOINTS
            for name, service in endpoints.items():
                self.vpc.add_interface_endpoint(
                    f"{name}Endpoint",
                    service=service,
                    subnets=ec2.SubnetSelection(subnets=self.private_subnets),
                    private_dns_enabled=True,
                    security_groups=[endpoint_security_group],
                    open=False,
                )

        self.task_security_group = ec2.SecurityGroup(
            self,
            "TaskSecurityGroup",
            vpc=self.vpc,
            description="ML job Fargate tasks: no ingress; egress to AWS APIs and data stores",
            allow_all_outbound=True,
        )
